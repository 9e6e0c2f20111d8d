"""What every call of one transport shares: the engine, the store, the observers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from gateway.admission import AdmitAll, CallAdmission
from gateway.bridge.registry import CallRegistry, LiveCall
from gateway.calls import CallStore
from voice_core.end_reasons import CallEnd, EndReason
from voice_core.engine import VoiceEngine
from voice_core.events import SessionEvent

log = logging.getLogger(__name__)

# Sees every engine event of every call, (call_id, event): live monitoring. Called in
# the call's event pump, so it must not block (it queues and returns).
EventObserver = Callable[[str, SessionEvent], None]


@dataclass(kw_only=True)
class TransportGateway:
    """The part of a transport's gateway that is the same for every transport.

    ``calls`` is shared by every gateway of a process when the control plane
    hands them the same registry; ``active`` is this transport's share of it.

    Limits, and why:
    - ``drain_timeout_s``: when the agent hangs up, its last words are still
      queued (in the carrier's buffer, on the track); wait this long for them to
      play before closing, so the goodbye is heard.
    - ``hangup_wait_s``: how long a hang-up from our side waits for the record.
    """

    transport: ClassVar[str]  # the registry's name for this transport's calls
    error_tag: ClassVar[str]  # names it in error:<tag>:<exception> end reasons
    # Phone lines (carriers, PBXes) can be answered by a machine: their outbound calls
    # are screened before the agent speaks (``gateway.bridge.screening``). A browser or
    # WhatsApp callee is always a person.
    screens_answering_machines: ClassVar[bool] = False

    engine: VoiceEngine
    store: CallStore
    recordings_dir: Path
    calls: CallRegistry = field(default_factory=CallRegistry)
    observers: list[EventObserver] = field(default_factory=list)
    # False while draining (or in a process without the media role): new calls are
    # refused so the carrier or browser retries elsewhere.
    accepting: bool = True
    # The operator's cap on calls per organization, checked before a new inbound call
    # gets a record or a session.
    admission: CallAdmission = field(default_factory=AdmitAll)
    drain_timeout_s: float = 3.0
    hangup_wait_s: float = 5.0

    @property
    def active(self) -> dict[str, LiveCall]:
        return self.calls.of(self.transport)

    def observe(self, call_id: str, event: SessionEvent) -> None:
        for observer in self.observers:
            try:
                observer(call_id, event)
            except Exception:  # a monitoring bug must not end the call
                log.exception("call %s: event observer failed", call_id)

    async def hangup(self, call_id: str, reason: CallEnd | EndReason | str) -> bool:
        """Hang up one of this transport's calls; False if it carries no such call."""
        return call_id in self.active and await self.calls.hangup(call_id, reason)

    async def hangup_all(self, reason: CallEnd | EndReason | str) -> None:
        await self.calls.hangup_all(reason, self.transport)
