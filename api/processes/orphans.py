"""Finalizing the calls of a process that died: ``failed``, reason ``interrupted``.

What the record already holds stays: the transcript and turn metrics the bridge
checkpointed as the call went on, and the recording it streamed to disk (whose WAV
header is given its real sizes here, where the file is reachable). The status change
goes through the call store like any call's end, so the campaign hook, the post-call
outbox (analysis and deliveries) and live monitoring see an ordinary final status.

Exactly once: the change is conditional on the call still being unfinished and
still the dead process's (``SqlCallStore.set_status(owner=...)``), so two processes
sweeping at the same moment never both finalize a call.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.calls.models import Call
from api.calls.store import SqlCallStore
from gateway.calls import CallStatus
from gateway.wav_stream import repair
from voice_core.end_reasons import CallEnd, EndReason

log = logging.getLogger(__name__)

UNFINISHED = [s.value for s in CallStatus if not s.final]


def interrupted_reason(why: str) -> str:
    return str(CallEnd(EndReason.INTERRUPTED, why))


async def finalize_interrupted(
    store: SqlCallStore,
    call_id: str,
    *,
    why: str,
    owner: str | None,
    recording_path: str | None,
) -> bool:
    """Finalize one call cut off by its process's death; False if someone else did.
    ``owner`` None: the record names no process (campaign recovery), no ownership check."""
    if recording_path:
        frames = await asyncio.to_thread(repair, recording_path)
        if frames is not None:
            log.info("call %s: recording %s repaired (%d frames)", call_id, recording_path, frames)
    done = await store.set_status(
        call_id, CallStatus.FAILED, reason=interrupted_reason(why), owner=owner
    )
    if done:
        log.warning("call %s finalized as interrupted: %s", call_id, why)
    return done


async def sweep_calls(
    sessions: async_sessionmaker, store: SqlCallStore, owner: str, why: str
) -> int:
    """Finalize every unfinished call of the dead process ``owner``; how many this did."""
    async with sessions() as db:
        rows = (
            await db.execute(
                select(Call.id, Call.recording_path).where(
                    Call.owner == owner, Call.status.in_(UNFINISHED)
                )
            )
        ).all()
    done = 0
    for call_id, recording_path in rows:
        try:
            if await finalize_interrupted(
                store,
                call_id,
                why=f"process {owner} {why}",
                owner=owner,
                recording_path=recording_path,
            ):
                done += 1
        except Exception:
            # One bad record must not keep the others of the dead process unfinished.
            log.exception("call %s: finalizing as interrupted failed", call_id)
    return done
