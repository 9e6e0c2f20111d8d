"""Browser calls: session tokens, SDP offer/answer, the widget script and the test-call page.

- ``POST /api/v1/sessions`` (API key): a single-use token for one browser call
  to one of the org's agents. The page owner's backend calls it, so the public
  page never holds an API key.
- ``POST /webrtc/offer`` (token): the SDP answer; the call starts when the
  peer connects. Open to any origin (CORS): the token is the credential, and
  no cookie is involved.
- ``GET /widget.js``: the embeddable widget; ``GET /test-call/{agent_id}``: a
  page that asks for an API key in the browser (never embedded by the server),
  mints a token with it and calls the agent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from api.agents.llm_policy import agent_config
from api.agents.schemas import AgentSpec
from api.agents.service import load_agent
from api.auth import Principal, get_db, require_key
from api.errors import AUTHED, WITH_BODY, error_responses
from api.idempotency.replay import Idempotent
from api.keys.limits import CAPACITY_RETRY_AFTER_S
from api.postcall.policy import current_settings
from gateway.calls import CallRecord, Direction, new_call_id
from gateway.webrtc.call import NotAccepting
from gateway.webrtc.sdp import SdpError, check_offer
from gateway.webrtc.tokens import TokenError

router = APIRouter(tags=["browser calls"])

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CARRIER = "webrtc"
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}
_AGENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Db = Annotated[AsyncSession, Depends(get_db)]
Auth = Annotated[Principal, Depends(require_key)]


class SessionRequest(BaseModel):
    agent_id: str = Field(min_length=1, max_length=64)
    call_context: dict[str, Any] = Field(
        default_factory=dict, description="variables for the agent (welcome message, prompt)"
    )


class SessionOut(BaseModel):
    token: str
    agent_id: str
    expires_in_s: float
    offer_url: str = "/webrtc/offer"
    ice_servers: list[dict[str, Any]] = Field(
        default_factory=list, description="RTCPeerConnection iceServers for the browser"
    )


class OfferIn(BaseModel):
    sdp: str = Field(max_length=64_000)
    type: str
    token: str = Field(max_length=200)


class AnswerOut(BaseModel):
    sdp: str
    type: str = "answer"
    call_id: str


@router.post(
    "/api/v1/sessions",
    status_code=201,
    response_model=SessionOut,
    dependencies=[Idempotent],
    responses=error_responses(*AUTHED, 404, 409, *WITH_BODY),
)
async def create_session(body: SessionRequest, request: Request, db: Db, who: Auth) -> SessionOut:
    agent = await load_agent(db, who.org_id, body.agent_id)
    tokens = request.app.state.session_tokens
    try:
        grant = await tokens.mint(who.org_id, agent.id, body.call_context)
    except TokenError as exc:
        raise HTTPException(429, detail=str(exc)) from exc
    settings = request.app.state.settings
    ice = [
        {
            "urls": url,
            "username": settings.transport.ice_username,
            "credential": settings.transport.ice_credential,
        }
        if url.startswith(("turn:", "turns:"))
        else {"urls": url}
        for url in settings.transport.ice_servers
    ]
    return SessionOut(
        token=grant.token, agent_id=agent.id, expires_in_s=tokens.ttl_s, ice_servers=ice
    )


@router.options("/webrtc/offer", include_in_schema=False)
async def offer_preflight() -> Response:
    return Response(status_code=204, headers=_CORS)


@router.post(
    "/webrtc/offer",
    response_model=AnswerOut,
    responses=error_responses(400, 401, 404, *WITH_BODY, 503),
)
async def webrtc_offer(body: OfferIn, request: Request, db: Db, response: Response) -> Any:
    response.headers.update(_CORS)
    # The offer is checked before the token is spent: a page with a broken offer
    # can fix it and retry with the same token.
    try:
        check_offer(body.sdp, body.type)
    except SdpError as exc:
        raise HTTPException(400, detail=f"sdp: {exc}", headers=_CORS) from exc
    try:
        grant = await request.app.state.session_tokens.redeem(body.token)
    except TokenError as exc:
        raise HTTPException(401, detail=f"token: {exc}", headers=_CORS) from exc
    if why := await request.app.state.webrtc.admission.refuse(grant.agent_id):
        raise HTTPException(
            429,
            detail=why,
            headers={**_CORS, "Retry-After": str(CAPACITY_RETRY_AFTER_S)},
        )
    agent_row = await load_agent(db, grant.org_id, grant.agent_id)
    version = agent_row.version
    # Through the policy, as a phone call's agent is: its LLM endpoint checked again and
    # pinned, its key rules applied.
    agent = await agent_config(
        AgentSpec.model_validate(agent_row.spec), current_settings.get(), grant.context
    )
    if agent is None:
        raise HTTPException(
            503, detail="agent: its LLM endpoint is refused by the egress policy", headers=_CORS
        )
    services = request.app.state.voxline
    call_id = new_call_id()

    async def make_record() -> CallRecord:
        record = CallRecord(
            id=call_id,
            agent_id=grant.agent_id,
            direction=Direction.INBOUND,
            from_number="browser",
            carrier=CARRIER,
            context=grant.context,
        )
        return await services.store.create(record, org_id=grant.org_id, agent_version=version)

    try:
        _, answer = await request.app.state.webrtc.answer(
            body.sdp, agent=agent, make_record=make_record, context=grant.context
        )
    except SdpError as exc:
        raise HTTPException(400, detail=f"sdp: {exc}", headers=_CORS) from exc
    except NotAccepting as exc:
        raise HTTPException(503, detail=str(exc), headers={**_CORS, "Retry-After": "1"}) from exc
    return AnswerOut(sdp=answer, call_id=call_id)


@router.get("/widget.js", include_in_schema=False)
async def widget_js() -> FileResponse:
    # Cached briefly: pages embed it, and a fix should reach them within minutes.
    return FileResponse(
        STATIC_DIR / "widget.js",
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@router.get("/test-call.js", include_in_schema=False)
async def test_call_js() -> FileResponse:
    return FileResponse(STATIC_DIR / "test-call.js", media_type="text/javascript")


@router.get("/test-call/{agent_id}", response_class=HTMLResponse, include_in_schema=False)
async def test_call_page(agent_id: str) -> HTMLResponse:
    if not _AGENT_ID.match(agent_id):
        raise HTTPException(404, detail="agent not found")
    page = (STATIC_DIR / "test-call.html").read_text()
    # The id is checked to [A-Za-z0-9_-], so it is safe inside an HTML attribute.
    return HTMLResponse(
        page.replace("{{AGENT_ID}}", agent_id),
        headers={
            "Content-Security-Policy": "default-src 'self'; media-src 'self' blob: mediastream:; "
            "style-src 'self' 'unsafe-inline'",
            "Cache-Control": "no-store",
        },
    )
