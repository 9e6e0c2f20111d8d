"""The voxline Python SDK: ``Client`` (sync) and ``AsyncClient`` (asyncio), on httpx.

```python
from voxline.client import Client

with Client("http://127.0.0.1:8000", api_key="vx_...") as vx:
    call = vx.calls.dispatch(agent_id, "+15550100199", call_context={"first_name": "Ana"})
    detail = vx.calls.wait(call.call_id, timeout=120)
    print(detail.status, [line.text for line in detail.transcript])
```

Every method maps to one API route (listed in the README); errors raise
``voxline.errors`` exceptions that carry the status and the server's error body.
``base_url`` and ``api_key`` default to ``VOXLINE_URL`` and ``VOXLINE_API_KEY``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from voxline import _ops
from voxline._ops import Op
from voxline.errors import APIConnectionError, VoxlineError, error_for
from voxline.models import (
    Agent,
    AgentVersion,
    Call,
    CallDetail,
    CallPage,
    Campaign,
    CampaignCreated,
    CampaignEvent,
    ContactsAdded,
    Delivery,
    DispatchResult,
    LiveStatus,
    WebhookTestResult,
)
from voxline.signing import verify_signature  # re-exported: webhook receivers verify with it
from voxline.sse import SSEParser

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 30.0
_CAMPAIGN_FINAL = ("completed", "cancelled", "failed")


def _settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    url = (base_url or os.environ.get("VOXLINE_URL") or DEFAULT_URL).rstrip("/")
    key = api_key or os.environ.get("VOXLINE_API_KEY")
    if not key:
        raise VoxlineError("no API key: pass api_key= or set VOXLINE_API_KEY")
    return url, key


def _headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": "voxline-python"}


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _result(op: Op[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise error_for(response.status_code, _body(response), op.method, str(response.request.url))
    if op.raw:
        return op.parse(response.content)
    if response.status_code == 204 or not response.content:
        return op.parse(None)
    return op.parse(response.json())


def _request_kwargs(op: Op[Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if op.params:
        kwargs["params"] = op.params
    if op.json is not None:
        kwargs["json"] = op.json
    if op.files is not None:
        kwargs["files"] = op.files
    if op.data is not None:
        kwargs["data"] = op.data
    return kwargs


def _campaign_events(parser: SSEParser, text: str) -> list[CampaignEvent]:
    return [
        CampaignEvent(event=e.event, data=json.loads(e.data), id=e.id) for e in parser.feed(text)
    ]


def _live_url(base_url: str, call_id: str | None, types: list[str] | None) -> str:
    url = "ws" + base_url.removeprefix("http") + "/api/v1/live"
    query = []
    if call_id:
        query.append(f"call_id={call_id}")
    if types:
        query.append("types=" + ",".join(types))
    return url + ("?" + "&".join(query) if query else "")


# ============================================================== sync


class Client:
    """Synchronous client. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url, self.api_key = _settings(base_url, api_key)
        self._http = http_client or httpx.Client(
            base_url=self.base_url, headers=_headers(self.api_key), timeout=timeout
        )
        self.agents = Agents(self)
        self.calls = Calls(self)
        self.campaigns = Campaigns(self)
        self.deliveries = Deliveries(self)
        self.webhooks = Webhooks(self)

    def request(self, op: Op[T]) -> T:
        try:
            response = self._http.request(op.method, op.path, **_request_kwargs(op))
        except httpx.HTTPError as exc:
            raise APIConnectionError(f"{op.method} {op.path}: {exc}") from exc
        return _result(op, response)

    def stream_lines(self, path: str) -> Iterator[str]:
        try:
            with self._http.stream("GET", path, timeout=httpx.Timeout(None, connect=10)) as r:
                if r.status_code >= 400:
                    r.read()
                    raise error_for(r.status_code, _body(r), "GET", str(r.request.url))
                yield from r.iter_text()
        except httpx.HTTPError as exc:
            raise APIConnectionError(f"GET {path}: {exc}") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Resource:
    def __init__(self, client: Client) -> None:
        self._c = client


class Agents(_Resource):
    def list(self) -> list[Agent]:
        return self._c.request(_ops.list_agents())

    def get(self, agent_id: str) -> Agent:
        return self._c.request(_ops.get_agent(agent_id))

    def create(self, spec: dict[str, Any]) -> Agent:
        """``spec``: the agent (name, prompt, welcome_message, ...). 422 -> ValidationError."""
        return self._c.request(_ops.create_agent(spec))

    def update(self, agent_id: str, spec: dict[str, Any]) -> Agent:
        """Saves a new version."""
        return self._c.request(_ops.update_agent(agent_id, spec))

    def delete(self, agent_id: str) -> None:
        self._c.request(_ops.delete_agent(agent_id))

    def versions(self, agent_id: str) -> list[AgentVersion]:
        return self._c.request(_ops.agent_versions(agent_id))

    def restore(self, agent_id: str, version: int) -> Agent:
        """Saves ``version``'s spec as a new version."""
        return self._c.request(_ops.restore_agent_version(agent_id, version))


class Calls(_Resource):
    def dispatch(
        self,
        agent_id: str,
        to_number: str,
        *,
        from_number: str | None = None,
        call_context: dict[str, Any] | None = None,
        channel: str | None = None,
    ) -> DispatchResult:
        return self._c.request(
            _ops.dispatch_call(
                agent_id,
                to_number,
                from_number=from_number,
                call_context=call_context,
                channel=channel,
            )
        )

    def get(self, call_id: str) -> CallDetail:
        return self._c.request(_ops.get_call(call_id))

    def list(self, **filters: Any) -> CallPage:
        """One page. Filters: status, agent_id, bulk_call_id, created_after,
        created_before, limit, cursor."""
        return self._c.request(_ops.list_calls(**filters))

    def iter(self, **filters: Any) -> Iterator[Call]:
        """Every matching call, newest first, following ``next_cursor``."""
        cursor = filters.pop("cursor", None)
        while True:
            page = self.list(**filters, cursor=cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def recording(self, call_id: str, path: str | os.PathLike[str] | None = None) -> bytes:
        """The stereo WAV (caller left, agent right); also written to ``path`` if given."""
        data = self._c.request(_ops.recording(call_id))
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def hangup(self, call_id: str) -> dict[str, Any]:
        return self._c.request(_ops.hangup_call(call_id))

    def wait(self, call_id: str, timeout: float = 300.0, poll_s: float = 1.0) -> CallDetail:
        """Poll until the call has a final status; TimeoutError past ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            detail = self.get(call_id)
            if detail.ended:
                return detail
            if time.monotonic() > deadline:
                raise TimeoutError(f"call {call_id} still {detail.status} after {timeout:g} s")
            time.sleep(poll_s)


class Campaigns(_Resource):
    def create(
        self,
        name: str,
        agent_id: str,
        *,
        contacts: list[dict[str, Any]] | None = None,
        contacts_csv: str | None = None,
        csv_file: str | os.PathLike[str] | bytes | IO[bytes] | None = None,
        **settings: Any,
    ) -> CampaignCreated:
        """Contacts as a list of dicts (``phone_number`` + variables), CSV text, or a CSV
        file (path, bytes or binary file, uploaded as multipart). ``settings``:
        concurrency, schedule, calling_window, retry, from_number."""
        return self._c.request(
            _ops.create_campaign(
                name,
                agent_id,
                contacts=contacts,
                contacts_csv=contacts_csv,
                csv_file=csv_file,
                **settings,
            )
        )

    def list(self) -> list[Campaign]:
        return self._c.request(_ops.list_campaigns())

    def get(self, campaign_id: int) -> Campaign:
        return self._c.request(_ops.get_campaign(campaign_id))

    def add_contacts(
        self,
        campaign_id: int,
        contacts: list[dict[str, Any]] | None = None,
        *,
        contacts_csv: str | None = None,
    ) -> ContactsAdded:
        return self._c.request(_ops.add_contacts(campaign_id, contacts, contacts_csv=contacts_csv))

    def contacts(self, campaign_id: int, **filters: Any) -> dict[str, Any]:
        """One page of contacts: ``{"data": [...], "next_cursor": ...}``."""
        return self._c.request(_ops.list_contacts(campaign_id, **filters))

    def pause(self, campaign_id: int) -> Campaign:
        return self._c.request(_ops.campaign_action(campaign_id, "pause"))

    def resume(self, campaign_id: int) -> Campaign:
        return self._c.request(_ops.campaign_action(campaign_id, "resume"))

    def cancel(self, campaign_id: int) -> Campaign:
        return self._c.request(_ops.campaign_action(campaign_id, "cancel"))

    def live_status(self, campaign_id: int) -> LiveStatus:
        return self._c.request(_ops.live_status(campaign_id))

    def events(self, campaign_id: int) -> Iterator[CampaignEvent]:
        """Server-Sent Events (``summary``, ``status``) until the campaign finishes."""
        parser = SSEParser()
        for chunk in self._c.stream_lines(_ops.campaign_events_path(campaign_id)):
            yield from _campaign_events(parser, chunk)


class Deliveries(_Resource):
    def list(self, **filters: Any) -> list[Delivery]:
        """Filters: call_id, state, limit."""
        return self._c.request(_ops.list_deliveries(**filters))

    def get(self, delivery_id: str) -> Delivery:
        return self._c.request(_ops.get_delivery(delivery_id))

    def retry(self, delivery_id: str) -> Delivery:
        return self._c.request(_ops.retry_delivery(delivery_id))


class Webhooks(_Resource):
    def test(self, url: str, **options: Any) -> WebhookTestResult:
        """Send one signed sample payload to ``url`` now. ``options``: method, headers,
        payload_template, content_type, agent_id."""
        return self._c.request(_ops.test_webhook(url, **options))


# ============================================================== async


class AsyncClient:
    """Asyncio client: the same resources as ``Client``, with ``await``, plus ``live()``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url, self.api_key = _settings(base_url, api_key)
        self._http = http_client or httpx.AsyncClient(
            base_url=self.base_url, headers=_headers(self.api_key), timeout=timeout
        )
        self.agents = AsyncAgents(self)
        self.calls = AsyncCalls(self)
        self.campaigns = AsyncCampaigns(self)
        self.deliveries = AsyncDeliveries(self)
        self.webhooks = AsyncWebhooks(self)

    async def request(self, op: Op[T]) -> T:
        try:
            response = await self._http.request(op.method, op.path, **_request_kwargs(op))
        except httpx.HTTPError as exc:
            raise APIConnectionError(f"{op.method} {op.path}: {exc}") from exc
        return _result(op, response)

    async def stream_lines(self, path: str) -> AsyncIterator[str]:
        try:
            async with self._http.stream("GET", path, timeout=httpx.Timeout(None, connect=10)) as r:
                if r.status_code >= 400:
                    await r.aread()
                    raise error_for(r.status_code, _body(r), "GET", str(r.request.url))
                async for chunk in r.aiter_text():
                    yield chunk
        except httpx.HTTPError as exc:
            raise APIConnectionError(f"GET {path}: {exc}") from exc

    async def live(
        self, *, call_id: str | None = None, types: list[str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """``WS /api/v1/live``: the organization's live events as dicts (``hello`` first),
        until the server closes the socket. Needs the ``websockets`` package."""
        import websockets

        url = _live_url(self.base_url, call_id, types)
        try:
            async with websockets.connect(
                url, additional_headers=_headers(self.api_key), max_size=2**22
            ) as ws:
                async for message in ws:
                    event = json.loads(message)
                    if event.get("type") == "error":
                        raise VoxlineError(f"live: {event.get('detail')}", body=event)
                    yield event
        except (OSError, websockets.InvalidHandshake) as exc:
            raise APIConnectionError(f"live: {exc}") from exc

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _AsyncResource:
    def __init__(self, client: AsyncClient) -> None:
        self._c = client


class AsyncAgents(_AsyncResource):
    async def list(self) -> list[Agent]:
        return await self._c.request(_ops.list_agents())

    async def get(self, agent_id: str) -> Agent:
        return await self._c.request(_ops.get_agent(agent_id))

    async def create(self, spec: dict[str, Any]) -> Agent:
        return await self._c.request(_ops.create_agent(spec))

    async def update(self, agent_id: str, spec: dict[str, Any]) -> Agent:
        return await self._c.request(_ops.update_agent(agent_id, spec))

    async def delete(self, agent_id: str) -> None:
        await self._c.request(_ops.delete_agent(agent_id))

    async def versions(self, agent_id: str) -> list[AgentVersion]:
        return await self._c.request(_ops.agent_versions(agent_id))

    async def restore(self, agent_id: str, version: int) -> Agent:
        return await self._c.request(_ops.restore_agent_version(agent_id, version))


class AsyncCalls(_AsyncResource):
    async def dispatch(
        self,
        agent_id: str,
        to_number: str,
        *,
        from_number: str | None = None,
        call_context: dict[str, Any] | None = None,
        channel: str | None = None,
    ) -> DispatchResult:
        return await self._c.request(
            _ops.dispatch_call(
                agent_id,
                to_number,
                from_number=from_number,
                call_context=call_context,
                channel=channel,
            )
        )

    async def get(self, call_id: str) -> CallDetail:
        return await self._c.request(_ops.get_call(call_id))

    async def list(self, **filters: Any) -> CallPage:
        return await self._c.request(_ops.list_calls(**filters))

    async def iter(self, **filters: Any) -> AsyncIterator[Call]:
        cursor = filters.pop("cursor", None)
        while True:
            page = await self.list(**filters, cursor=cursor)
            for call in page.data:
                yield call
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def recording(self, call_id: str, path: str | os.PathLike[str] | None = None) -> bytes:
        data = await self._c.request(_ops.recording(call_id))
        if path is not None:
            await asyncio.to_thread(Path(path).write_bytes, data)
        return data

    async def hangup(self, call_id: str) -> dict[str, Any]:
        return await self._c.request(_ops.hangup_call(call_id))

    async def wait(self, call_id: str, timeout: float = 300.0, poll_s: float = 1.0) -> CallDetail:
        deadline = time.monotonic() + timeout
        while True:
            detail = await self.get(call_id)
            if detail.ended:
                return detail
            if time.monotonic() > deadline:
                raise TimeoutError(f"call {call_id} still {detail.status} after {timeout:g} s")
            await asyncio.sleep(poll_s)


class AsyncCampaigns(_AsyncResource):
    async def create(
        self,
        name: str,
        agent_id: str,
        *,
        contacts: list[dict[str, Any]] | None = None,
        contacts_csv: str | None = None,
        csv_file: str | os.PathLike[str] | bytes | IO[bytes] | None = None,
        **settings: Any,
    ) -> CampaignCreated:
        return await self._c.request(
            _ops.create_campaign(
                name,
                agent_id,
                contacts=contacts,
                contacts_csv=contacts_csv,
                csv_file=csv_file,
                **settings,
            )
        )

    async def list(self) -> list[Campaign]:
        return await self._c.request(_ops.list_campaigns())

    async def get(self, campaign_id: int) -> Campaign:
        return await self._c.request(_ops.get_campaign(campaign_id))

    async def add_contacts(
        self,
        campaign_id: int,
        contacts: list[dict[str, Any]] | None = None,
        *,
        contacts_csv: str | None = None,
    ) -> ContactsAdded:
        return await self._c.request(
            _ops.add_contacts(campaign_id, contacts, contacts_csv=contacts_csv)
        )

    async def contacts(self, campaign_id: int, **filters: Any) -> dict[str, Any]:
        return await self._c.request(_ops.list_contacts(campaign_id, **filters))

    async def pause(self, campaign_id: int) -> Campaign:
        return await self._c.request(_ops.campaign_action(campaign_id, "pause"))

    async def resume(self, campaign_id: int) -> Campaign:
        return await self._c.request(_ops.campaign_action(campaign_id, "resume"))

    async def cancel(self, campaign_id: int) -> Campaign:
        return await self._c.request(_ops.campaign_action(campaign_id, "cancel"))

    async def live_status(self, campaign_id: int) -> LiveStatus:
        return await self._c.request(_ops.live_status(campaign_id))

    async def events(self, campaign_id: int) -> AsyncIterator[CampaignEvent]:
        parser = SSEParser()
        async for chunk in self._c.stream_lines(_ops.campaign_events_path(campaign_id)):
            for event in _campaign_events(parser, chunk):
                yield event


class AsyncDeliveries(_AsyncResource):
    async def list(self, **filters: Any) -> list[Delivery]:
        return await self._c.request(_ops.list_deliveries(**filters))

    async def get(self, delivery_id: str) -> Delivery:
        return await self._c.request(_ops.get_delivery(delivery_id))

    async def retry(self, delivery_id: str) -> Delivery:
        return await self._c.request(_ops.retry_delivery(delivery_id))


class AsyncWebhooks(_AsyncResource):
    async def test(self, url: str, **options: Any) -> WebhookTestResult:
        return await self._c.request(_ops.test_webhook(url, **options))


__all__ = [
    "AsyncClient",
    "Client",
    "verify_signature",
]
