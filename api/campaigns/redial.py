"""What to do with an orphaned campaign call before its contact may be dialed again.

A contact's lease expired: the process that dialed it stopped renewing (it died, or
is stuck). The call itself may still be up at the carrier, so re-queueing it at once
could ring the same person twice. The carrier is asked first (``Carrier.call_status``)
and the answer, with what our record says, decides (sans-I/O, one table):

- the carrier cannot be asked: ``WAIT`` (ask again next round; never guess);
- still queued or ringing there: ``CANCEL`` it, then re-queue once it stopped;
- up there (answered, talking): ``WAIT``; its media may be on a live process, or the
  carrier ends it soon now that nothing feeds it;
- answered there and over (``completed``), or our record says it was answered: the
  person was reached, so it is finalized as ``INTERRUPTED`` and never re-dialed by
  recovery (a retry policy on ``failed`` still applies, as for any failed call);
- over without having been answered (busy, no answer, failed, cancelled), or the
  carrier never had it: ``REQUEUE``.

A carrier without a status query (``call_status``) is asked to cancel the call
before a re-queue, and our record decides the rest: a weaker guarantee (a call
answered at the carrier that our record never heard of could be dialed again), so
every carrier should implement it.
"""

from __future__ import annotations

from enum import StrEnum

from gateway.calls import CallRecord, CallStatus


class Redial(StrEnum):
    REQUEUE = "requeue"
    CANCEL = "cancel"
    INTERRUPTED = "interrupted"
    WAIT = "wait"


def decide(record: CallRecord | None, at_carrier: CallStatus | None, *, asked: bool) -> Redial:
    """``at_carrier``: the carrier's answer (None: it has no such call); ``asked``: False
    when the carrier could not be asked at all."""
    if not asked:
        return Redial.WAIT
    if at_carrier in (CallStatus.QUEUED, CallStatus.RINGING):
        return Redial.CANCEL
    if at_carrier == CallStatus.IN_PROGRESS:
        return Redial.WAIT
    answered = record is not None and (
        record.answered_at is not None or record.status == CallStatus.IN_PROGRESS
    )
    if at_carrier == CallStatus.COMPLETED or answered:
        return Redial.INTERRUPTED
    return Redial.REQUEUE
