"""``voxline``: serve the platform, run the demo, or place a test call.

voxline serve [--host H] [--port P]
voxline demo [--host H] [--port P]
voxline call --agent ID --say "..." [--say "..."] [--wav FILE] [--record OUT.wav] [--url WS]
voxline keys create [--name NAME] [--scope read|calls|admin] [--org ORG_ID | --new-org NAME]
voxline keys list [--org ORG_ID]
voxline keys revoke KEY_ID
voxline mcp   (an MCP server on stdio; VOXLINE_URL, VOXLINE_API_KEY)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from api.keys import cli as keys_cli
from voice_core.config import EngineSettings
from voice_core.logsafe import SafeFormatter

log = logging.getLogger("voxline")


class _AppendLine(argparse.Action):
    """--say and --wav share one ordered list, so lines are spoken as typed."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        lines = list(getattr(namespace, "lines", None) or [])
        lines.append(("wav" if option == "--wav" else "say", values))
        namespace.lines = lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (
        ("serve", "run the server (media stream, carrier webhooks, health)"),
        ("demo", "run the server and place one simulated call to the demo agent"),
    ):
        p = sub.add_parser(name, help=help_)
        # Unset: VOXLINE_HOST / VOXLINE_PORT, read with the rest of the server settings.
        p.add_argument("--host", default=None)
        p.add_argument("--port", type=int, default=None)
    call = sub.add_parser("call", help="call an agent over the phone protocol and print the talk")
    call.add_argument("--agent", default=None, help="agent id (default: the server's default)")
    call.add_argument("--say", action=_AppendLine, metavar="TEXT", help="a line to speak")
    call.add_argument("--wav", action=_AppendLine, metavar="FILE", help="a WAV file to play")
    call.add_argument("--record", metavar="OUT.wav", help="save the call as heard (stereo)")
    call.add_argument(
        "--url",
        help="media stream to call, e.g. ws://127.0.0.1:8000/media-stream "
        "(default: start a server in this process)",
    )
    call.add_argument("--barge-in", action="store_true", help="speak over the agent's lines")
    call.add_argument(
        "--org",
        default=None,
        help="with --url: the agent's organization id (the stream token names it); the "
        "token is signed with VOXLINE_STREAM_TOKEN_SECRET, which must be the server's",
    )
    call.set_defaults(lines=[])
    keys_cli.add_parser(sub)
    sub.add_parser(
        "mcp",
        help="MCP server on stdio for AI assistants (VOXLINE_URL, VOXLINE_API_KEY)",
    )
    return parser


def configure_logging(level: int) -> None:
    """Every line the process logs goes through ``SafeFormatter``: a caller's id with a
    newline or an escape sequence in it cannot forge or colour a log line."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "mcp":  # before logging setup: stdout is the MCP protocol channel
        from voxline.mcp_server import main as mcp_main

        return mcp_main()
    configure_logging(logging.WARNING if args.command == "call" else logging.INFO)
    if args.command == "serve":
        return _serve(args)
    if args.command == "keys":
        return asyncio.run(keys_cli.run(args))
    try:
        if args.command == "demo":
            return asyncio.run(_demo(args))
        return asyncio.run(_call(args))
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    from api.app import create_app
    from api.settings import ServerSettings

    settings = ServerSettings(**_listen_on(args))
    app = create_app(settings)
    # log_config=None: uvicorn's loggers go through the root handler (SafeFormatter) too
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="info", log_config=None
    )
    server = DrainingServer(config, app, settings.drain_timeout_s)
    server.run()
    return 0


def _listen_on(args: argparse.Namespace) -> dict[str, Any]:
    """--host and --port, where given, over the environment's."""
    given = {"host": args.host, "port": args.port}
    return {name: value for name, value in given.items() if value is not None}


class DrainingServer(uvicorn.Server):
    """SIGTERM drains before uvicorn stops: readiness turns false at once, no new calls
    or campaign contacts are taken, active calls finish (up to the drain timeout),
    then the server shuts down as usual. A second signal stops at once."""

    def __init__(self, config: uvicorn.Config, app: Any, drain_timeout_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_timeout_s = drain_timeout_s
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        loop = self._loop
        if sig == signal.SIGTERM and not self._draining and loop is not None:
            self._draining = True
            lifecycle = self._app.state.lifecycle
            lifecycle.begin_drain()  # flags only: safe inside a signal handler
            loop.call_soon_threadsafe(lambda: loop.create_task(self._drain_then_exit(lifecycle)))
            return
        super().handle_exit(sig, frame)

    async def _drain_then_exit(self, lifecycle: Any) -> None:
        try:
            await lifecycle.drain(self._drain_timeout_s)
        finally:
            self.should_exit = True


async def _demo(args: argparse.Namespace) -> int:
    from api.app import create_app
    from api.server import BackgroundServer
    from api.settings import ServerSettings
    from gateway.agents import DEMO_NUMBER
    from gateway.calls import CallRecord, Direction, new_call_id
    from gateway.demo_flow import DEMO_CALLER_LINES
    from gateway.simulated.carrier import SimulatedContact

    settings = ServerSettings(**_listen_on(args))
    app = create_app(settings)
    server = BackgroundServer(app, settings.host, settings.port, log_level="info")
    print("voxline demo: loading models ...", flush=True)
    await server.start()
    vox = app.state.voxline
    boot = app.state.bootstrap
    base = server.base_url
    key = boot.api_key or "<run: voxline keys create>"
    print(
        f"\nvoxline is up\n"
        f"  API docs:     {base}/docs\n"
        f"  API key:      {key}\n"
        f"  demo agent:   {boot.agent_id} (Bright Smile Dental, number {DEMO_NUMBER})\n"
        f"  status page:  {base}/api/status-page/heartbeat/all\n"
        f"  media stream: {server.media_url}\n"
        f"  voice hook:   POST {base}/twilio/voice\n"
        f"\ntry it:\n"
        f"  curl -s -H 'Authorization: Bearer {key}' {base}/api/v1/agents\n"
        f"  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
        f'       -d \'{{"agent_id": "{boot.agent_id}", "to_number": "+15550100199"}}\' \\\n'
        f"       {base}/api/v1/calls/dispatch\n",
        flush=True,
    )
    call_id = new_call_id()
    await vox.store.create(
        CallRecord(
            id=call_id,
            agent_id=boot.agent_id,
            direction=Direction.OUTBOUND,
            from_number=DEMO_NUMBER,
            to_number="+15550100199",
        ),
        org_id=boot.org_id,
    )
    print(f"placing a simulated call {call_id} to the demo agent (Bright Smile Dental) ...")
    sid = await vox.simulated.place_call(
        to="+15550100199",
        from_=DEMO_NUMBER,
        agent_id=boot.agent_id,
        call_id=call_id,
        contact=SimulatedContact(lines=list(DEMO_CALLER_LINES)),
    )
    call = await vox.simulated.wait(sid)
    record = await vox.store.get(call_id)
    if call.report is not None:
        await call.report.transcribe(vox.engine.stt)
        print(format_conversation(call.report, record.turn_metrics if record else None))
    if record is not None:
        print(
            f"call {call_id}: {record.status} ({record.end_reason}); "
            f"log: {base}/api/v1/calls/{call_id}"
        )
        if record.flow:
            print(f"booked: {record.flow.get('values')}")
    print(f"\nstill serving on {base} (Ctrl-C to stop)", flush=True)
    try:
        await server._task  # type: ignore[misc]
    finally:
        await server.stop()
    return 0


async def _call(args: argparse.Namespace) -> int:
    from gateway.calls import new_call_id
    from gateway.simulated.callee import CalleeLine, SimulatedCallee
    from voice_core.audio.wav import read_wav

    if not args.lines:
        print("voxline call: give at least one --say TEXT or --wav FILE", file=sys.stderr)
        return 2
    lines: list[CalleeLine] = []
    for kind, value in args.lines:
        if kind == "wav":
            try:
                audio = read_wav(value, 16000)
            except (OSError, ValueError, EOFError) as exc:
                print(f"voxline call: --wav {value}: {exc}", file=sys.stderr)
                return 2
            lines.append(CalleeLine(f"[{Path(value).name}]", barge_in=args.barge_in, audio=audio))
        else:
            lines.append(CalleeLine(value, barge_in=args.barge_in))

    async with contextlib.AsyncExitStack() as stack:
        store = None
        call_id = new_call_id()
        if args.url:
            token = _remote_token(args, call_id)
            if token is None:
                return 2
            stt, tts = await asyncio.to_thread(_load_speech_models)
            url = args.url
        else:
            from api.app import create_app
            from api.server import BackgroundServer

            print("starting an in-process server (models load in a few seconds) ...")
            from api.settings import ServerSettings

            app = create_app(ServerSettings())
            server = BackgroundServer(app)
            await server.start()
            stack.push_async_callback(server.stop)
            vox = app.state.voxline
            stt, tts, store, url = vox.engine.stt, vox.engine.tts, vox.store, server.media_url
            agent_id = args.agent or vox.agents.default_agent_id
            token = await vox.phone.mint_token(call_id, agent_id)
        callee = SimulatedCallee(
            url, lines, tts=tts, agent_id=args.agent, call_id=call_id, token=token
        )
        print(f"calling {url} (call {callee.call_id}) ...", flush=True)
        try:
            report = await callee.run()
        except OSError as exc:
            print(f"voxline call: cannot connect to {url}: {exc}", file=sys.stderr)
            return 1
        await report.transcribe(stt)
        metrics = None
        if store is not None:
            with contextlib.suppress(TimeoutError):
                record = await store.wait_final(callee.call_id, 10)  # type: ignore[attr-defined]
                metrics = record.turn_metrics
        print(format_conversation(report, metrics))
        if args.record:
            path = report.save_recording(args.record)
            print(f"recording (you left, agent right): {path}")
        return 0 if report.heard and not report.errors else 1


def _remote_token(args: argparse.Namespace, call_id: str) -> str | None:
    """A stream token for a server elsewhere, signed with its secret from the environment."""
    from gateway.config import TransportSettings
    from gateway.stream_tokens import StreamTokens

    secret = TransportSettings().stream_token_secret
    if secret is None or not args.agent or not args.org:
        print(
            "voxline call --url: needs --agent, --org and VOXLINE_STREAM_TOKEN_SECRET "
            "(the server's) to sign the stream token",
            file=sys.stderr,
        )
        return None
    tokens = StreamTokens(secret.get_secret_value())
    return tokens.mint(call_id=call_id, org_id=args.org, agent_id=args.agent)


def _load_speech_models() -> tuple[Any, Any]:
    from voice_core.stt.whisper import WhisperSTT
    from voice_core.tts.piper import PiperTTS

    settings = EngineSettings()
    stt = WhisperSTT(
        settings.whisper_model,
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        cpu_threads=settings.whisper_threads,
    )
    return stt, PiperTTS(settings.piper_voice, threads=settings.piper_threads)


def format_conversation(report: Any, turn_metrics: list[dict[str, Any]] | None = None) -> str:
    """The call as a script, in time order, with the caller-side reply latency per line."""
    rows: list[tuple[float, str]] = []
    for i, said in enumerate(report.said):
        latency = report.reply_latency_ms[i] if i < len(report.reply_latency_ms) else None
        note = f"   (agent answered {latency:.0f} ms after you stopped)" if latency else ""
        rows.append((said.started_at, f"[{said.started_at:6.2f}s] you:   {said.text}{note}"))
    for heard in report.heard:
        cut = " [interrupted]" if heard.interrupted else ""
        rows.append((heard.started_at, f"[{heard.started_at:6.2f}s] agent: {heard.text}{cut}"))
    out = ["", "--- conversation ---", *(row for _, row in sorted(rows, key=lambda r: r[0]))]
    if turn_metrics:
        out.append("--- server-side latency per turn (ms) ---")
        for m in turn_metrics:
            stages = m.get("stages_ms", {})
            out.append(
                f"turn {m['turn']}: response {stages.get('response', '-')}, "
                f"voice-to-voice {stages.get('voice_to_voice', '-')}, "
                f"stt {stages.get('stt', '-')}, "
                f"llm first token {stages.get('llm_first_token', '-')}"
            )
    out.append(
        f"--- {report.media_frames} agent frames, {report.underruns} underruns, "
        f"{report.clears} clears, marks {len(report.marks_echoed)}/{len(report.marks_received)} "
        f"echoed, ended by {report.closed_by} ---"
    )
    if report.errors:
        out.append("errors: " + "; ".join(report.errors))
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
