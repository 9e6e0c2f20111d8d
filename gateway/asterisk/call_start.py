"""Starting a call a PBX hands us: which record, which agent, then the engine session.

A PBX names a call its own way (an AudioSocket UUID, an Asterisk channel id, a
FreeSWITCH uuid) and may pass a voxline ``call_id`` and ``agent_id`` through (URI
parameters, fork metadata, a UUID registered ahead by an ARI step). ``begin_call``
resolves them the same way for every PBX transport, as the Twilio transport does for
its stream parameters:

- the record: the ``call_id`` given, else the one carrying the PBX's call id (an ARI
  step or an outbound dial created it), else a new inbound record;
- the agent: the one given, else the record's, else the transport's default, else the
  directory's default;
- a record already final is never touched again (``ALREADY_ENDED``); no agent found is
  ``UNKNOWN_AGENT``; either ends the call with a logged reason, nothing else.

Transport-neutral (a candidate for ``gateway.bridge``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.agents import AgentDirectory
from gateway.bridge import CallBridge
from gateway.calls import CallRecord, Direction, new_call_id
from gateway.recording import StereoRecorder
from voice_core.end_reasons import EndReason

# Call context comes from a PBX's metadata and ends up in the agent's prompt: keep it small.
MAX_CONTEXT_ITEMS = 32
MAX_CONTEXT_VALUE = 500


@dataclass(frozen=True)
class CallRequest:
    carrier: str  # the record's carrier: "asterisk", "freeswitch", "jambonz"
    carrier_call_id: str | None = None  # the PBX's own id for the call
    call_id: str | None = None  # a voxline call id passed through the PBX
    agent_id: str | None = None
    from_number: str = ""
    to_number: str = ""
    context: dict[str, str] = field(default_factory=dict)


def bounded_context(items: dict[str, Any], reserved: frozenset[str]) -> dict[str, str]:
    """The string-valued entries a PBX passed (bounded), minus the ones the gateway reads."""
    out: dict[str, str] = {}
    for key, value in items.items():
        if key in reserved or not isinstance(value, str) or not isinstance(key, str):
            continue
        if len(out) >= MAX_CONTEXT_ITEMS:
            break
        out[key[:64]] = value[:MAX_CONTEXT_VALUE]
    return out


async def begin_call(
    bridge: CallBridge,
    agents: AgentDirectory,
    request: CallRequest,
    *,
    default_agent_id: str | None = None,
) -> bool:
    """Find or create the record, start the engine session; False if the call ended."""
    store = bridge.gw.store
    record = await store.get(request.call_id) if request.call_id else None
    if record is None and request.carrier_call_id:
        record = await store.find_by_carrier_id(request.carrier_call_id)
    call_id = record.id if record else (request.call_id or new_call_id())
    bridge.call_id = call_id
    agent_id = (
        request.agent_id
        or (record.agent_id if record else None)
        or default_agent_id
        or agents.default_agent_id
    )
    agent = await agents.get(agent_id) if agent_id else None
    if record is None and (why := await bridge.gw.admission.refuse(agent_id)):
        bridge.call_id = None  # refused before it began: the attempt's record is all there is
        bridge.end_with(EndReason.OVER_CAPACITY, why)
        return False
    if record is None:
        record = await store.create(
            CallRecord(
                id=call_id,
                agent_id=agent_id,
                direction=Direction.INBOUND,
                from_number=request.from_number,
                to_number=request.to_number,
                carrier=request.carrier,
                carrier_call_id=request.carrier_call_id,
            )
        )
    else:
        record = await store.update(
            call_id,
            agent_id=agent_id,
            carrier=record.carrier or request.carrier,
            carrier_call_id=record.carrier_call_id or request.carrier_call_id,
        )
    if record.status.final:
        bridge.end_with(EndReason.ALREADY_ENDED, f"{call_id} already ended ({record.status})")
        bridge.call_id = None  # never touch a finished record
        return False
    if agent is None:
        bridge.end_with(EndReason.UNKNOWN_AGENT, repr(agent_id))
        return False
    context = {**record.context, **request.context}
    # The recording's timeline starts with the media.
    bridge.recorder = StereoRecorder()
    bridge.register(call_id)
    await bridge.start_session(agent, context)
    return True
