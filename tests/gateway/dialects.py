"""What the carrier-dialect tests share: a stub of each carrier's REST API that checks
what it receives, a real server with the dialects enabled, and a caller that speaks a
dialect over a real WebSocket.

The stub stands in for the carrier's cloud (it cannot exist here): a real local HTTP
server that checks auth and the documented request shape and records every command.
The peer behaves like the carrier with a person on the line: it sends the caller's
audio every 20 ms of real time, plays the agent's audio in real time, echoes each mark
once what came before it has played, and honours ``clear``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import numpy as np
import pytest
import pytest_asyncio
import websockets
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from websockets.exceptions import ConnectionClosed

from api.app import Voxline, create_app
from api.server import BackgroundServer
from api.settings import ServerSettings
from gateway.agents import InMemoryAgentDirectory
from gateway.calls import InMemoryCallStore
from voice_core.audio.resample import resample
from voice_core.config import AgentConfig, EndCallConfig, LLMConfig
from voice_core.engine import VoiceEngine

PUBLIC_URL = "https://voice.example.test"
TELNYX_API_KEY = "KEY0123456789ABCDEF"
TELNYX_CONNECTION_ID = "1494404757140276705"
PLIVO_AUTH_ID = "MAXXXXXXXXXXXXXXXXXX"
PLIVO_AUTH_TOKEN = "plivo-test-auth-token"
ARI_USERNAME = "voxline"
ARI_PASSWORD = "ari-test-password"
TELNYX_SIGNING_KEY = Ed25519PrivateKey.generate()
TELNYX_PUBLIC_KEY = base64.b64encode(
    TELNYX_SIGNING_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
).decode()
VONAGE_SIGNATURE_SECRET = "vonage-signature-secret-for-tests"
VONAGE_APPLICATION_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
_VONAGE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
VONAGE_PRIVATE_KEY = _VONAGE_KEY.private_bytes(
    Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
).decode()
VONAGE_PUBLIC_KEY = (
    _VONAGE_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
)
EXOTEL_USER, EXOTEL_PASSWORD = "exotel", "exotel-test-password"

QUICK_AGENT_ID = "quick"
QUICK_NUMBER = "+15550001111"
QUICK_WELCOME = "Hello, you have reached the garden centre. How can I help?"
TALKER_AGENT_ID = "talker"
TALKER_NUMBER = "+15550002222"
TALKER_WELCOME = (
    "Welcome to the city library information line. Our opening hours are nine in the "
    "morning to eight in the evening on weekdays, and ten to four on Saturdays. "
    "Please listen carefully, as our menu options have recently changed."
)


def _agent(welcome: str) -> AgentConfig:
    return AgentConfig(
        name="test",
        system_prompt="You answer phone questions in one short sentence.",
        welcome_message=welcome,
        llm=LLMConfig(max_tokens=24, temperature=0.2),
        end_call=EndCallConfig(end_call_tool=False, silence_timeout_s=60),
    )


def vonage_jwt(
    body: bytes, *, at: float | None = None, secret: str = VONAGE_SIGNATURE_SECRET
) -> str:
    """``Authorization`` of a signed Vonage webhook carrying ``body``."""
    claims = {
        "iat": int(time.time() if at is None else at),
        "jti": str(time.monotonic_ns()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": VONAGE_APPLICATION_ID,
    }
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def telnyx_headers(body: bytes, *, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    signature = TELNYX_SIGNING_KEY.sign(timestamp.encode() + b"|" + body)
    return {
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        "telnyx-timestamp": timestamp,
        "content-type": "application/json",
    }


# --------------------------------------------------------------------- carrier stub


@dataclass
class CarrierStub:
    """What the stub received: (carrier, path, body) for every accepted request."""

    commands: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)  # call ids hung up
    stasis: set[str] = field(default_factory=set)  # Asterisk channels in a Stasis app

    def of(self, path_part: str) -> list[dict[str, Any]]:
        return [body for _, path, body in self.commands if path_part in path]


def carrier_stub(stub: CarrierStub) -> FastAPI:
    app = FastAPI()

    def telnyx_error(status: int, code: str, title: str) -> JSONResponse:
        return JSONResponse({"errors": [{"code": code, "title": title, "detail": title}]}, status)

    async def telnyx_body(request: Request) -> dict[str, Any] | JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TELNYX_API_KEY}":
            stub.refused.append((request.url.path, 401))
            return telnyx_error(401, "10009", "Authentication failed")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return telnyx_error(400, "10015", "Bad Request")
        body = await request.json()
        return body if isinstance(body, dict) else telnyx_error(400, "10015", "Bad Request")

    @app.post("/v2/calls")
    async def dial(request: Request) -> JSONResponse:
        body = await telnyx_body(request)
        if isinstance(body, JSONResponse):
            return body
        for name in ("connection_id", "to", "from"):
            if not isinstance(body.get(name), str):
                return telnyx_error(422, "10032", f"{name} is required")
        stub.commands.append(("telnyx", "/v2/calls", body))
        data = {
            "call_control_id": "v3:dialed-" + body["to"].lstrip("+"),
            "call_leg_id": "leg-1",
            "call_session_id": "session-1",
            "is_alive": False,
            "record_type": "call",
        }
        return JSONResponse({"data": data})

    @app.get("/v2/calls/{control_id}")
    async def telnyx_status(control_id: str, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TELNYX_API_KEY}":
            return telnyx_error(401, "10009", "Authentication failed")
        data = {"call_control_id": control_id, "is_alive": control_id not in stub.ended,
                "record_type": "call"}  # fmt: skip
        return JSONResponse({"data": data})

    @app.post("/v2/calls/{control_id}/actions/{action}")
    async def command(control_id: str, action: str, request: Request) -> JSONResponse:
        body = await telnyx_body(request)
        if isinstance(body, JSONResponse):
            return body
        if control_id in stub.ended:
            return telnyx_error(422, "90018", "Call has already ended")
        if "stream_url" in body:
            url = body["stream_url"]
            if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
                return telnyx_error(422, "10032", "stream_url must be a WebSocket URL")
            if body.get("stream_track") not in ("inbound_track", "outbound_track", "both_tracks"):
                return telnyx_error(422, "10032", "stream_track is invalid")
            if body.get("stream_bidirectional_mode") not in (None, "mp3", "rtp"):
                return telnyx_error(422, "10032", "stream_bidirectional_mode is invalid")
            codecs = ("PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16")
            if body.get("stream_bidirectional_codec", "PCMU") not in codecs:
                return telnyx_error(422, "10032", "stream_bidirectional_codec is invalid")
        if action == "transfer" and not re.fullmatch(
            r"\+[1-9][0-9]{6,14}|sips?:[^\s]+@[^\s]+", str(body.get("to", ""))
        ):
            return telnyx_error(422, "10032", "to is invalid")
        if action == "send_dtmf" and not re.fullmatch(r"[0-9A-D*#wW]+", str(body.get("digits"))):
            return telnyx_error(422, "10032", "digits is invalid")
        if action == "hangup":
            stub.ended.add(control_id)
        stub.commands.append(("telnyx", f"/v2/calls/{control_id}/actions/{action}", body))
        return JSONResponse({"data": {"result": "ok"}})

    def plivo_ok(request: Request, auth_id: str) -> bool:
        expected = base64.b64encode(f"{PLIVO_AUTH_ID}:{PLIVO_AUTH_TOKEN}".encode()).decode()
        ok = (
            auth_id == PLIVO_AUTH_ID and request.headers.get("authorization") == f"Basic {expected}"
        )
        if not ok:
            stub.refused.append((request.url.path, 401))
        return ok

    @app.post("/v1/Account/{auth_id}/Call/")
    async def plivo_call(auth_id: str, request: Request) -> JSONResponse:
        if not plivo_ok(request, auth_id):
            return JSONResponse({"error": "authentication failed"}, 401)
        body = await request.json()
        for name in ("from", "to", "answer_url"):
            if not isinstance(body.get(name), str) or not body[name]:
                return JSONResponse({"api_id": "x", "error": f"{name} is required"}, 400)
        stub.commands.append(("plivo", "/Call/", body))
        return JSONResponse(
            {"api_id": "api-1", "message": "call fired", "request_uuid": "req-" + body["to"][1:]},
            201,
        )

    @app.get("/v1/Account/{auth_id}/Call/{uuid}/")
    async def plivo_live(auth_id: str, uuid: str, request: Request) -> JSONResponse:
        if not plivo_ok(request, auth_id):
            return JSONResponse({"error": "authentication failed"}, 401)
        if request.query_params.get("status") != "live" or uuid in stub.ended:
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse({"api_id": "x", "call_status": "in-progress", "call_uuid": uuid})

    @app.post("/v1/Account/{auth_id}/Call/{uuid}/")
    async def plivo_transfer(auth_id: str, uuid: str, request: Request) -> JSONResponse:
        """Transfer API: legs aleg|bleg|both; the URL of each leg moved is required."""
        if not plivo_ok(request, auth_id):
            return JSONResponse({"error": "authentication failed"}, 401)
        body = await request.json()
        legs = body.get("legs", "aleg")
        if legs not in ("aleg", "bleg", "both"):
            return JSONResponse({"api_id": "x", "error": "legs must be aleg, bleg or both"}, 400)
        for leg in ("aleg", "bleg"):
            if legs in (leg, "both"):
                url = body.get(f"{leg}_url")
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    return JSONResponse({"api_id": "x", "error": f"{leg}_url is required"}, 400)
                if body.get(f"{leg}_method", "POST") not in ("GET", "POST"):
                    return JSONResponse({"api_id": "x", "error": f"{leg}_method"}, 400)
        if uuid in stub.ended:
            return JSONResponse({"api_id": "x", "error": "call not found"}, 404)
        stub.commands.append(("plivo", f"/Call/{uuid}/", body))
        return JSONResponse({"api_id": "x", "message": "call transferred"}, 202)

    @app.post("/v1/Account/{auth_id}/Call/{uuid}/DTMF/")
    async def plivo_dtmf(auth_id: str, uuid: str, request: Request) -> JSONResponse:
        if not plivo_ok(request, auth_id):
            return JSONResponse({"error": "authentication failed"}, 401)
        body = await request.json()
        if not re.fullmatch(r"[0-9*#wW]+", str(body.get("digits", ""))):
            return JSONResponse({"api_id": "x", "error": "digits is invalid"}, 400)
        if body.get("leg", "aleg") not in ("aleg", "bleg"):
            return JSONResponse({"api_id": "x", "error": "leg must be aleg or bleg"}, 400)
        if uuid in stub.ended:
            return JSONResponse({"api_id": "x", "error": "call not found"}, 404)
        stub.commands.append(("plivo", f"/Call/{uuid}/DTMF/", body))
        return JSONResponse({"api_id": "x", "message": "digits sent"}, 202)

    @app.delete("/v1/Account/{auth_id}/{kind}/{uuid}/")
    async def plivo_delete(auth_id: str, kind: str, uuid: str, request: Request) -> Response:
        if not plivo_ok(request, auth_id):
            return JSONResponse({"error": "authentication failed"}, 401)
        if uuid in stub.ended or kind not in ("Call", "Request"):
            return JSONResponse({"error": "not found"}, 404)
        stub.ended.add(uuid)
        stub.commands.append(("plivo", f"/{kind}/{uuid}/", {}))
        return Response(status_code=204)

    def vonage_ok(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), VONAGE_PUBLIC_KEY, ["RS256"])
        except jwt.InvalidTokenError:
            claims = {}
        ok = claims.get("application_id") == VONAGE_APPLICATION_ID and "jti" in claims
        if not ok:
            stub.refused.append((request.url.path, 401))
        return ok

    @app.post("/v1/calls")
    async def vonage_call(request: Request) -> JSONResponse:
        if not vonage_ok(request):
            return JSONResponse({"title": "Unauthorized"}, 401)
        body = await request.json()
        to, from_ = body.get("to"), body.get("from")
        if not (isinstance(to, list) and to and to[0].get("type") == "phone"):
            return JSONResponse({"title": "Bad Request", "detail": "to"}, 400)
        if not (isinstance(from_, dict) and from_.get("type") == "phone"):
            return JSONResponse({"title": "Bad Request", "detail": "from"}, 400)
        if not isinstance(body.get("answer_url"), list) or not isinstance(
            body.get("event_url"), list
        ):
            return JSONResponse({"title": "Bad Request", "detail": "answer_url"}, 400)
        stub.commands.append(("vonage", "/v1/calls", body))
        call_uuid = "vonage-" + to[0]["number"]
        return JSONResponse(
            {"uuid": call_uuid, "status": "started", "direction": "outbound",
             "conversation_uuid": "CON-" + call_uuid},
            201,
        )  # fmt: skip

    @app.get("/v1/calls/{call_uuid}")
    async def vonage_status(call_uuid: str, request: Request) -> JSONResponse:
        if not vonage_ok(request):
            return JSONResponse({"title": "Unauthorized"}, 401)
        status = "completed" if call_uuid in stub.ended else "answered"
        return JSONResponse({"uuid": call_uuid, "status": status, "direction": "outbound"})

    @app.put("/v1/calls/{call_uuid}")
    async def vonage_modify(call_uuid: str, request: Request) -> Response:
        if not vonage_ok(request):
            return JSONResponse({"title": "Unauthorized"}, 401)
        body = await request.json()
        action = body.get("action")
        if action not in ("hangup", "mute", "unmute", "earmuff", "unearmuff", "transfer"):
            return JSONResponse({"title": "Bad Request"}, 400)
        if action == "transfer":
            # destination: {"type": "ncco", "ncco": [...]} or {"type": "ncco", "url": [...]}
            dest = body.get("destination")
            ncco = dest.get("ncco") if isinstance(dest, dict) else None
            urls = dest.get("url") if isinstance(dest, dict) else None
            if not (isinstance(dest, dict) and dest.get("type") == "ncco") or not (
                (isinstance(ncco, list) and ncco) or (isinstance(urls, list) and urls)
            ):
                return JSONResponse({"title": "Bad Request", "detail": "destination"}, 400)
            for item in ncco or []:
                if item.get("action") == "connect":
                    endpoint = item.get("endpoint")
                    if not (isinstance(endpoint, list) and endpoint):
                        return JSONResponse({"title": "Bad Request", "detail": "endpoint"}, 400)
                    for e in endpoint:
                        ok = (e.get("type") == "phone" and str(e.get("number", "")).isdigit()) or (
                            e.get("type") == "sip" and str(e.get("uri", "")).startswith("sip")
                        )
                        if not ok:
                            return JSONResponse({"title": "Bad Request", "detail": "endpoint"}, 400)
        if call_uuid in stub.ended:
            return JSONResponse({"title": "Not Found"}, 404)
        if action == "hangup":
            stub.ended.add(call_uuid)
        stub.commands.append(("vonage", f"/v1/calls/{call_uuid}", body))
        return Response(status_code=204)

    @app.put("/v1/calls/{call_uuid}/dtmf")
    async def vonage_dtmf(call_uuid: str, request: Request) -> JSONResponse:
        if not vonage_ok(request):
            return JSONResponse({"title": "Unauthorized"}, 401)
        body = await request.json()
        if not re.fullmatch(r"[0-9*#p]+", str(body.get("digits", ""))):
            return JSONResponse({"title": "Bad Request", "detail": "digits"}, 400)
        if call_uuid in stub.ended:
            return JSONResponse({"title": "Not Found"}, 404)
        stub.commands.append(("vonage", f"/v1/calls/{call_uuid}/dtmf", body))
        return JSONResponse({"message": "DTMF sent", "uuid": call_uuid})

    # Asterisk ARI (channels in a Stasis app: ids in stub.stasis; others answer 409).
    def ari_ok(request: Request) -> bool:
        expected = base64.b64encode(f"{ARI_USERNAME}:{ARI_PASSWORD}".encode()).decode()
        ok = request.headers.get("authorization") == f"Basic {expected}"
        if not ok:
            stub.refused.append((request.url.path, 401))
        return ok

    def ari_channel(channel_id: str) -> JSONResponse | None:
        if channel_id in stub.ended:
            return JSONResponse({"message": "Channel not found"}, 404)
        if channel_id not in stub.stasis:
            return JSONResponse({"message": "Channel not in Stasis application"}, 409)
        return None

    @app.post("/ari/channels/{channel_id}/{operation}")
    async def ari(channel_id: str, operation: str, request: Request) -> Response:
        if not ari_ok(request):
            return JSONResponse({"message": "Authentication required"}, 401)
        q = dict(request.query_params)
        required = {"variable": ("variable",), "continue": (), "dtmf": ("dtmf",)}
        if operation not in required:
            return JSONResponse({"message": "Invalid method"}, 405)
        missing = [name for name in required[operation] if not q.get(name)]
        if missing:
            return JSONResponse({"message": f"{missing[0]} parameter is required"}, 400)
        if operation == "dtmf" and not re.fullmatch(r"[0-9A-D*#wW]+", q["dtmf"]):
            return JSONResponse({"message": "invalid DTMF"}, 400)
        refused = ari_channel(channel_id)
        if refused is not None:
            return refused
        if operation == "continue":
            stub.stasis.discard(channel_id)  # back in the dialplan
        stub.commands.append(("asterisk", f"/ari/channels/{channel_id}/{operation}", q))
        return Response(status_code=204)

    return app


# --------------------------------------------------------------------- the server


@dataclass
class DialectServer:
    server: BackgroundServer
    vox: Voxline
    stub: CarrierStub
    stub_url: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def local(self, public_ws_url: str) -> str:
        """A stream URL as we handed it to the carrier, pointed at the local port."""
        public = PUBLIC_URL.replace("https://", "wss://")
        return public_ws_url.replace(public, f"ws://127.0.0.1:{self.server.port}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dialect_server(
    engine: VoiceEngine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DialectServer]:
    stub = CarrierStub()
    stub_server = BackgroundServer(carrier_stub(stub))
    await stub_server.start()
    agents = InMemoryAgentDirectory()
    agents.add(QUICK_AGENT_ID, _agent(QUICK_WELCOME), numbers=[QUICK_NUMBER])
    agents.add(TALKER_AGENT_ID, _agent(TALKER_WELCOME), numbers=[TALKER_NUMBER])
    app = create_app(
        ServerSettings(
            data_dir=str(tmp_path_factory.mktemp("voxline-dialects")),
            public_url=PUBLIC_URL,
            carrier="telnyx",
            telnyx_enabled=True,
            telnyx_api_key=TELNYX_API_KEY,
            telnyx_public_key=TELNYX_PUBLIC_KEY,
            telnyx_connection_id=TELNYX_CONNECTION_ID,
            telnyx_api_base=stub_server.base_url,
            plivo_enabled=True,
            plivo_auth_id=PLIVO_AUTH_ID,
            plivo_auth_token=PLIVO_AUTH_TOKEN,
            plivo_api_base=stub_server.base_url,
            vonage_enabled=True,
            vonage_signature_secret=VONAGE_SIGNATURE_SECRET,
            vonage_application_id=VONAGE_APPLICATION_ID,
            vonage_private_key=VONAGE_PRIVATE_KEY,
            vonage_api_base=stub_server.base_url,
            exotel_enabled=True,
            exotel_username=EXOTEL_USER,
            exotel_password=EXOTEL_PASSWORD,
        ),
        engine,
        agents=agents,
        store=InMemoryCallStore(),  # the gateway's view of calls; the API is not under test
    )
    server = BackgroundServer(app)
    await server.start()
    vox: Voxline = app.state.voxline
    yield DialectServer(server, vox, stub, stub_server.base_url)
    await server.stop()
    await stub_server.stop()


# --------------------------------------------------------------------- the caller


def speech_frames(audio16k: np.ndarray, rate: int) -> list[np.ndarray]:
    """Speech (int16, 16 kHz) as 20 ms frames at ``rate``, plus a second of silence so
    the agent's endpointing hears the line end."""
    pcm = resample(audio16k, 16000, rate)
    pcm = np.concatenate([pcm, np.zeros(rate, dtype=np.int16)])
    step = rate // 50
    pad = (-pcm.size) % step
    pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
    return [pcm[i : i + step] for i in range(0, pcm.size, step)]


@dataclass
class PeerDialect:
    """How one carrier's wire looks from the carrier's side (the test's)."""

    rate: int
    media: Callable[[np.ndarray], str | bytes]  # caller frame -> message
    parse: Callable[[str | bytes], tuple[str, Any]]  # agent message -> ("media", pcm) etc.
    mark_played: Callable[[str], str]  # the carrier's echo of a mark
    cleared: Callable[[], str | None]  # the carrier's answer to a clear, if any
    stop: Callable[[], str | None]  # the carrier's goodbye before closing


@dataclass
class DialectPeer:
    url: str
    dialect: PeerDialect
    opening: list[str | bytes]
    headers: dict[str, str] = field(default_factory=dict)
    heard: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (time, pcm)
    marks: list[str] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    close_code: int | None = None
    _play: deque[np.ndarray | str] = field(default_factory=deque)  # frames and mark names
    _say: deque[np.ndarray] = field(default_factory=deque)

    async def connect(self) -> None:
        self.t0 = time.monotonic()
        self.ws = await websockets.connect(
            self.url, additional_headers=self.headers, close_timeout=2
        )
        for message in self.opening:
            await self.ws.send(message)
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._tick())]

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, frames: list[np.ndarray]) -> None:
        self._say.extend(frames)

    @property
    def saying(self) -> bool:
        return bool(self._say)

    async def _receive(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                kind, value = self.dialect.parse(message)
                if kind == "media":
                    step = self.dialect.rate // 50
                    self._play.extend(value[i : i + step] for i in range(0, value.size, step))
                elif kind == "mark":
                    self.marks.append(value)
                    self._play.append(value)
                elif kind == "clear":
                    self.clears.append(self.now())
                    names = [m for m in self._play if isinstance(m, str)]
                    self._play.clear()
                    for name in names:  # queued marks come back on a clear
                        await self.ws.send(self.dialect.mark_played(name))
                    answer = self.dialect.cleared()
                    if answer:
                        await self.ws.send(answer)
                else:
                    self.errors.append(f"unexpected {kind}: {value!r}")
        self.close_code = self.ws.close_code

    async def _tick(self) -> None:
        """Every 20 ms: one caller frame out, one agent frame played (marks echoed)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        silence = np.zeros(self.dialect.rate // 50, dtype=np.int16)
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = self._say.popleft() if self._say else silence
                await self.ws.send(self.dialect.media(frame))
                while self._play and isinstance(self._play[0], str):
                    await self.ws.send(self.dialect.mark_played(str(self._play.popleft())))
                if self._play:
                    played = self._play.popleft()
                    assert isinstance(played, np.ndarray)
                    self.heard.append((self.now(), played))
                due += 0.02
                await asyncio.sleep(max(0.0, due - loop.time()))

    def audio16k(self, since: float = 0.0, until: float = float("inf")) -> np.ndarray:
        chunks = [pcm for t, pcm in self.heard if since <= t < until]
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return resample(np.concatenate(chunks), self.dialect.rate, 16000)

    async def wait_utterance_end(self, count: int = 1, timeout: float = 90) -> None:
        """Until ``count`` utterances ended with a mark and every mark was played (an
        interrupted utterance has none: its end is the clear)."""
        async with asyncio.timeout(timeout):
            while len(self.marks) < count or any(isinstance(m, str) for m in self._play):
                await asyncio.sleep(0.05)

    async def wait_heard(self, after: float, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while not any(t > after for t, _ in self.heard):
                await asyncio.sleep(0.05)

    async def hang_up(self) -> None:
        goodbye = self.dialect.stop()
        with contextlib.suppress(ConnectionClosed):
            if goodbye:
                await self.ws.send(goodbye)
        await self.ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def closed_by_server(self, timeout: float = 15) -> int | None:
        async with asyncio.timeout(timeout):
            await asyncio.gather(self._tasks[0], return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return self.ws.close_code


async def raw_socket(
    url: str, *messages: str | bytes, headers: dict[str, str] | None = None
) -> tuple[int | None, str]:
    """Send ``messages``, read until the server closes; how it closed."""
    async with websockets.connect(url, additional_headers=headers, close_timeout=2) as ws:
        for m in messages:
            await ws.send(m)
        try:
            async with asyncio.timeout(15):
                async for _ in ws:
                    pass
        except ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def greeting_question_answer(transcript: list[dict]) -> bool:
    """The agent spoke first, the caller then (one turn, or a few if the engine split the
    line at a pause), and the agent answered after."""
    speakers = [e["speaker"] for e in transcript]
    if speakers[:2] != ["agent", "caller"]:
        return False
    return "agent" in speakers[speakers.index("caller") :]
