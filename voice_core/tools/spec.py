"""What an agent's tools are, as a tenant writes them: custom HTTP functions and the
built-in live web search.

Both are plain data, saved with the agent. Secrets never appear here: a header value
names one as ``{{secret:ENV_NAME}}`` and web search names its key's variable in
``api_key_env``; the control plane resolves those names (only the operator's
allow-listed ones) into ``AgentConfig.tool_secrets`` when a call starts.

An agent carries the two as two fields (``tools``, ``web_search``) rather than one
wrapper object: each is useful alone, and a missing field keeps its default.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Names the engine gives its own tools: a custom tool may not shadow one.
BUILTIN_TOOL_NAMES = frozenset({"end_call", "transfer_call", "send_dtmf", "web_search"})

ENV_NAME = r"[A-Z_][A-Z0-9_]{0,63}"
# A header value's reference to a secret: ``{{secret:CRM_TOKEN}}`` (spaces allowed inside).
SECRET_REF = re.compile(r"\{\{\s*secret:\s*(" + ENV_NAME + r")\s*\}\}")
# A URL placeholder filled from the arguments: ``{order_id}``.
URL_PLACEHOLDER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]{0,63})\}")

# A tool's parameter schema is sent to the model on every turn: keep it small (the
# embedded model's context is 8k tokens, and every tool's schema is in the prompt).
MAX_SCHEMA_CHARS = 4000
MAX_HEADERS = 20
# Headers the HTTP client computes itself; a tenant setting them could confuse the
# receiving server (Host picks the virtual host behind the checked address).
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")


def secret_names(text: str) -> list[str]:
    """The variable names ``text`` references as ``{{secret:NAME}}``."""
    return SECRET_REF.findall(text)


def _local_refs_only(schema: Any) -> bool:
    if isinstance(schema, dict):
        for key, item in schema.items():
            if key in ("$ref", "$dynamicRef") and not (
                isinstance(item, str) and item.startswith("#")
            ):
                return False
            if not _local_refs_only(item):
                return False
    elif isinstance(schema, list):
        return all(_local_refs_only(item) for item in schema)
    return True


class HttpToolSpec(BaseModel):
    """A function the model may call mid-call: one HTTP request to the customer's API.

    Arguments fill ``{name}`` placeholders in the URL (URL-encoded); the rest go as
    query parameters (GET, DELETE) or as the JSON body (POST, PUT, PATCH). The answer
    must be JSON; the model gets it compacted to about 2 KB.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,39}$", description="what the model calls it (snake_case)"
    )
    description: str = Field(
        min_length=1, max_length=1000, description="when to call it, for the model"
    )
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments: an object schema with properties",
    )
    url: str = Field(
        max_length=2000,
        description="http(s) URL; {param} placeholders in the path or query are filled "
        "from the arguments",
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    timeout_s: float = Field(
        3.0,
        gt=0,
        le=10,
        description="the caller waits in silence (or hears a filler line) meanwhile: a few "
        "seconds at most",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="static request headers; a value may reference a secret as "
        "{{secret:ENV_NAME}} (the operator's allow-listed variables only)",
    )
    max_response_bytes: int = Field(
        16 * 1024,
        ge=256,
        le=1024 * 1024,
        description="a longer answer is refused: the model only gets ~2 KB of it anyway",
    )

    @field_validator("name")
    @classmethod
    def _not_builtin(cls, value: str) -> str:
        if value in BUILTIN_TOOL_NAMES:
            raise ValueError(f"{value!r} is a built-in tool's name")
        return value

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_SCHEMA_CHARS:
            raise ValueError(f"schema longer than {MAX_SCHEMA_CHARS} characters as JSON")
        if value.get("type") != "object" or not isinstance(value.get("properties"), dict):
            raise ValueError('must be an object schema: {"type": "object", "properties": {...}}')
        required = value.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise ValueError("required must be a list of property names")
        missing = [r for r in required if r not in value["properties"]]
        if missing:
            raise ValueError(f"required names no property: {', '.join(missing)}")
        if not _local_refs_only(value):
            # a remote $ref would make argument checking fetch a URL (or fail on it)
            raise ValueError("$ref may only point inside the schema (#/...)")
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON schema: {exc.message}") from exc
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(URL_PLACEHOLDER.sub("x", value))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host")
        if "{" in urlsplit(value).netloc:
            raise ValueError("placeholders may fill the path or query, never the host")
        if parts.username or parts.password:
            raise ValueError("credentials in the URL are not allowed; use headers")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_HEADERS:
            raise ValueError(f"at most {MAX_HEADERS} headers")
        for name, text in value.items():
            if not HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"{name!r} is set by the client itself")
            if len(text) > 2000 or "\r" in text or "\n" in text:
                raise ValueError(f"{name}: at most 2000 characters, one line")
            if "{{" in SECRET_REF.sub("", text):
                raise ValueError(f"{name}: a secret is written {{{{secret:ENV_NAME}}}}")
        return value

    @model_validator(mode="after")
    def _placeholders_are_parameters(self) -> HttpToolSpec:
        unknown = [p for p in self.placeholders() if p not in self.parameters["properties"]]
        if unknown:
            raise ValueError(f"url placeholders name no parameter: {', '.join(unknown)}")
        return self

    def placeholders(self) -> list[str]:
        return URL_PLACEHOLDER.findall(self.url)

    def secret_names(self) -> list[str]:
        return [n for text in self.headers.values() for n in secret_names(text)]


WebSearchProvider = Literal["searxng", "brave", "tavily"]

# The providers' own API bases (SearXNG has none: it is an instance someone runs).
DEFAULT_SEARCH_BASES: dict[str, str] = {
    "brave": "https://api.search.brave.com",
    "tavily": "https://api.tavily.com",
}


class WebSearchConfig(BaseModel):
    """The built-in ``web_search`` tool: off unless enabled, per agent."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="offer the model a web_search tool")
    provider: WebSearchProvider = Field(
        "searxng", description="searxng (your instance's JSON API), brave or tavily"
    )
    base_url: str | None = Field(
        None,
        max_length=500,
        description="SearXNG: the instance's URL (required; its JSON format must be on). "
        "Brave and Tavily: their API by default",
    )
    api_key_env: str | None = Field(
        None,
        pattern=f"^{ENV_NAME}$",
        description="name of the environment variable holding the provider's key (Brave, "
        "Tavily; optional for SearXNG): the operator's allow-listed variables only",
    )
    max_results: int = Field(
        3, ge=1, le=10, description="results read to the model: a spoken answer needs few"
    )
    timeout_s: float = Field(3.0, gt=0, le=10, description="one search request")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host")
        return value

    @model_validator(mode="after")
    def _complete(self) -> WebSearchConfig:
        if not self.enabled:
            return self
        if self.provider == "searxng" and not self.base_url:
            raise ValueError("searxng needs base_url (the instance's URL)")
        if self.provider in ("brave", "tavily") and not self.api_key_env:
            raise ValueError(f"{self.provider} needs api_key_env (the key's variable name)")
        return self

    def resolved_base(self) -> str:
        return (self.base_url or DEFAULT_SEARCH_BASES.get(self.provider, "")).rstrip("/")
