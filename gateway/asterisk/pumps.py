"""Run a call's pumps until the first one stops, then stop the rest.

Every PBX call runs the same few tasks (read the caller's side, write the engine's
events to the sink, maybe a pacer); the call is over as soon as one of them ends or
the bridge says so (``over``: a hang-up from either side, a timeout, a bad message).
A task that died of a bug is re-raised so the bridge records ``error:<tag>:<type>``;
``CallOver`` is the pumps' own "the end reason is already set" and is not an error.

Transport-neutral (a candidate for ``gateway.bridge``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class CallOver(Exception):
    """Raised inside a pump once the call's end reason is set."""


async def run_pumps(over: asyncio.Event, *pumps: Coroutine[Any, Any, None]) -> None:
    tasks = [asyncio.create_task(p) for p in pumps]
    watcher = asyncio.create_task(over.wait())
    try:
        await asyncio.wait({*tasks, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (*tasks, watcher):
            task.cancel()
        results = await asyncio.gather(*tasks, watcher, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception) and not isinstance(result, CallOver):
            raise result
