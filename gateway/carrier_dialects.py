"""The carrier dialects a process runs, built from the transport settings (docs/carriers.md).

Telnyx, Plivo, Vonage and Exotel are each off unless enabled, and refuse to
start without the credentials that verify their webhooks, because their routes are
on the public HTTP port. Every dialect shares the process's stream tokens and the
organization resolver with the Twilio route, so a token opens one stream, once,
whichever carrier presents it. Each also gives the control plane its outbound
``Carrier`` when ``VOXLINE_CARRIER`` names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter

from gateway.agents import AgentDirectory
from gateway.bridge import CallRegistry, EventObserver, TransportGateway
from gateway.bridge.carrier_call import OrgResolver
from gateway.calls import CallStore
from gateway.carriers import Carrier
from gateway.config import TransportSettings
from gateway.exotel.routes import ExotelGateway
from gateway.exotel.routes import build_router as exotel_router
from gateway.plivo.carrier import PlivoApi, PlivoCarrier
from gateway.plivo.routes import PlivoGateway
from gateway.plivo.routes import build_router as plivo_router
from gateway.stream_tokens import StreamTokens
from gateway.telnyx.carrier import TelnyxCallControl, TelnyxCarrier
from gateway.telnyx.routes import WEBHOOK_PATH as TELNYX_WEBHOOK_PATH
from gateway.telnyx.routes import TelnyxGateway, TelnyxStreamSettings
from gateway.telnyx.routes import build_router as telnyx_router
from gateway.vonage.carrier import VonageApi, VonageCarrier
from gateway.vonage.routes import VonageGateway
from gateway.vonage.routes import build_router as vonage_router
from voice_core.engine import VoiceEngine


class CarrierSettingsError(ValueError):
    pass


@dataclass
class CarrierDialects:
    gateways: list[TransportGateway] = field(default_factory=list)
    routers: list[APIRouter] = field(default_factory=list)
    carriers: dict[str, Carrier] = field(default_factory=dict)  # outbound, by name
    apis: list[TelnyxCallControl | PlivoApi | VonageApi] = field(
        default_factory=list
    )  # REST clients

    def set_accepting(self, accepting: bool) -> None:
        for gw in self.gateways:
            gw.accepting = accepting

    async def aclose(self) -> None:
        # The REST clients are shared by each dialect's hang-ups and its outbound carrier.
        for api in self.apis:
            await api.aclose()


def _need(value: object, names: str, dialect: str) -> None:
    if not value:
        raise CarrierSettingsError(
            f"VOXLINE_{dialect.upper()}_ENABLED needs {names}: its webhooks are public and "
            "are verified (or its REST API authenticated) with them"
        )


def build_carrier_dialects(
    t: TransportSettings,
    *,
    public_url: str | None,
    engine: VoiceEngine,
    store: CallStore,
    agents: AgentDirectory,
    recordings_dir: Path,
    calls: CallRegistry,
    observers: list[EventObserver],
    tokens: StreamTokens,
    organization_of: OrgResolver,
) -> CarrierDialects:
    def shared() -> dict:
        return dict(
            engine=engine,
            store=store,
            agents=agents,
            recordings_dir=recordings_dir,
            calls=calls,
            observers=observers,
            tokens=tokens,
            organization_of=organization_of,
            media_burst_s=t.media_burst_s,
        )

    out = CarrierDialects()
    if t.telnyx_enabled:
        _need(t.telnyx_api_key, "VOXLINE_TELNYX_API_KEY", "telnyx")
        _need(t.telnyx_public_key, "VOXLINE_TELNYX_PUBLIC_KEY", "telnyx")
        assert t.telnyx_api_key is not None and t.telnyx_public_key is not None
        api = TelnyxCallControl(t.telnyx_api_key.get_secret_value(), api_base=t.telnyx_api_base)
        out.apis.append(api)
        telnyx = TelnyxGateway(**shared(), hang_up=api.hang_up)
        rate = 16000 if t.telnyx_codec == "L16" else 8000
        stream = TelnyxStreamSettings(t.telnyx_public_key, t.telnyx_codec, rate)
        out.gateways.append(telnyx)
        out.routers.append(telnyx_router(telnyx, api, stream, public_url))
        if t.carrier == "telnyx":
            _need(t.telnyx_connection_id, "VOXLINE_TELNYX_CONNECTION_ID", "telnyx")
            _need(public_url, "VOXLINE_PUBLIC_URL", "telnyx")
            out.carriers["telnyx"] = TelnyxCarrier(
                api,
                connection_id=t.telnyx_connection_id or "",
                webhook_url=f"{(public_url or '').rstrip('/')}{TELNYX_WEBHOOK_PATH}",
                store=store,
            )
    if t.plivo_enabled:
        _need(t.plivo_auth_id, "VOXLINE_PLIVO_AUTH_ID", "plivo")
        _need(t.plivo_auth_token, "VOXLINE_PLIVO_AUTH_TOKEN", "plivo")
        assert t.plivo_auth_id is not None and t.plivo_auth_token is not None
        token = t.plivo_auth_token.get_secret_value()
        plivo_api = PlivoApi(t.plivo_auth_id, token, api_base=t.plivo_api_base)
        out.apis.append(plivo_api)
        plivo = PlivoGateway(**shared(), hang_up=plivo_api.hang_up)
        out.gateways.append(plivo)
        out.routers.append(
            plivo_router(plivo, auth_token=token, public_url=public_url, audio=t.plivo_audio)
        )
        if t.carrier == "plivo":
            _need(public_url, "VOXLINE_PUBLIC_URL", "plivo")
            out.carriers["plivo"] = PlivoCarrier(
                plivo_api, public_url=public_url or "", store=store
            )
    if t.vonage_enabled:
        _need(t.vonage_signature_secret, "VOXLINE_VONAGE_SIGNATURE_SECRET", "vonage")
        assert t.vonage_signature_secret is not None
        vonage = VonageGateway(**shared())
        if t.vonage_application_id and t.vonage_private_key:
            vonage_api = VonageApi(
                t.vonage_application_id,
                t.vonage_private_key.get_secret_value(),
                api_base=t.vonage_api_base,
            )
            out.apis.append(vonage_api)
            vonage.hang_up = vonage_api.hang_up
            if t.carrier == "vonage":
                _need(public_url, "VOXLINE_PUBLIC_URL", "vonage")
                out.carriers["vonage"] = VonageCarrier(
                    vonage_api, public_url=public_url or "", store=store
                )
        out.gateways.append(vonage)
        out.routers.append(
            vonage_router(
                vonage,
                signature_secret=t.vonage_signature_secret.get_secret_value(),
                public_url=public_url,
            )
        )
    if t.exotel_enabled:
        _need(t.exotel_username and t.exotel_password, "VOXLINE_EXOTEL_USERNAME and _PASSWORD",
              "exotel")  # fmt: skip
        assert t.exotel_username is not None and t.exotel_password is not None
        exotel = ExotelGateway(**shared())
        out.gateways.append(exotel)
        out.routers.append(
            exotel_router(
                exotel,
                username=t.exotel_username,
                password=t.exotel_password.get_secret_value(),
                public_url=public_url,
            )
        )
    if t.carrier in ("telnyx", "plivo", "vonage") and t.carrier not in out.carriers:
        raise CarrierSettingsError(
            f"VOXLINE_CARRIER={t.carrier} needs VOXLINE_{t.carrier.upper()}_ENABLED=true (and "
            "for vonage VOXLINE_VONAGE_APPLICATION_ID and _PRIVATE_KEY)"
        )
    return out
