"""Agent and phone-number bodies: what an agent is, as the API takes and returns it."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from api.schemas import TRIGGER_STATUSES, Strict, UtcDateTime, check_e164
from voice_core.config import (
    AgentConfig,
    EndCallConfig,
    EndpointingConfig,
    LLMConfig,
    STTConfig,
    TransferConfig,
    TTSConfig,
    VoicemailConfig,
)
from voice_core.flows.spec import FlowSpec
from voice_core.tools.spec import HttpToolSpec, WebSearchConfig


class PromptSections(Strict):
    """The system prompt in named parts, composed in this order."""

    identity: str = Field("", max_length=4000, description="who the agent is")
    task: str = Field("", max_length=8000, description="what the agent must get done")
    style: str = Field("", max_length=4000, description="tone, length of answers")
    knowledge: str = Field("", max_length=32000, description="facts the agent may use")
    guardrails: str = Field("", max_length=4000, description="what the agent must not do")

    def compose(self) -> str:
        parts = [
            ("", self.identity),
            ("Task", self.task),
            ("Style", self.style),
            ("Knowledge", self.knowledge),
            ("Rules", self.guardrails),
        ]
        return "\n\n".join(f"{t}: {v}".strip(": ") if t else v for t, v in parts if v.strip())


class LLMSettings(Strict):
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; null = default")
    model: str | None = None
    api_key_env: str | None = Field(
        None,
        pattern=r"^[A-Z_][A-Z0-9_]{0,63}$",
        description="name of the environment variable holding the key (keys are not stored)",
    )
    temperature: float = Field(0.6, ge=0, le=2)
    max_tokens: int = Field(120, ge=1, le=4096)


class ExtractionVariable(Strict):
    key: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
    description: str = Field(min_length=1, max_length=1000)
    type: Literal["string", "number", "integer", "boolean", "date"] = "string"
    enum: list[str] | None = None


class PostCallAction(Strict):
    channel: Literal["webhook", "email", "slack", "hubspot", "salesforce", "whatsapp"]
    on_statuses: list[Literal[TRIGGER_STATUSES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["completed"], min_length=1
    )
    config: dict[str, Any] = Field(default_factory=dict)


class AgentSpec(Strict):
    """Everything an agent is. Saved whole as a new version on every change."""

    name: str = Field(min_length=1, max_length=200)
    prompt: PromptSections = Field(default_factory=PromptSections)
    welcome_message: str | None = Field(None, max_length=1000)
    language: str = Field("en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    voice: str | None = Field(None, description="TTS voice; null = the default voice")
    fallback_line: str = Field(AgentConfig.model_fields["fallback_line"].default, max_length=500)
    stt: STTConfig = Field(default_factory=STTConfig)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    tts: TTSConfig = Field(default_factory=TTSConfig)
    flow: FlowSpec | None = Field(
        None, description="a conversation flow: nodes, typed slots, read-back (docs/flows.md)"
    )
    endpointing: EndpointingConfig = Field(default_factory=EndpointingConfig)
    end_call: EndCallConfig = Field(default_factory=EndCallConfig)
    transfer: TransferConfig = Field(
        default_factory=TransferConfig,
        description="the transfer_call tool: off unless enabled, only to these targets",
    )
    dtmf_tool: bool = Field(False, description="offer the LLM a send_dtmf tool (IVRs)")
    voicemail: VoicemailConfig = Field(default_factory=VoicemailConfig)
    extraction: list[ExtractionVariable] = Field(default_factory=list, max_length=100)
    post_call_actions: list[PostCallAction] = Field(default_factory=list, max_length=20)
    tools: list[HttpToolSpec] = Field(
        default_factory=list,
        max_length=20,
        description="custom HTTP functions the LLM may call mid-call (names unique)",
    )
    web_search: WebSearchConfig = Field(
        default_factory=WebSearchConfig, description="the built-in web_search tool: off by default"
    )

    @model_validator(mode="after")
    def _unique_extraction_keys(self) -> AgentSpec:
        keys = [v.key for v in self.extraction]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"extraction keys must be unique; repeated: {', '.join(dupes)}")
        names = [t.name for t in self.tools]
        if len(set(names)) < len(names):
            raise ValueError("tool names must be unique")
        if not self.prompt.compose():
            self.prompt.identity = f"You are {self.name}, a helpful phone agent."
        return self

    def to_agent_config(
        self, context: dict[str, Any] | None = None, settings: Any = None
    ) -> AgentConfig:
        """The engine's config. ``settings`` (default: the serving app's) decide which
        key variable may be read, and whether ``llm.base_url`` is the operator's own
        endpoint (``api.agents.llm_policy``)."""
        from api.postcall.policy import (
            PLACEHOLDER_KEY,
            current_settings,
            is_operator_llm_endpoint,
            tenant_secret,
        )
        from api.tools.policy import tool_secrets

        settings = settings if settings is not None else current_settings.get()
        llm = self.llm
        api_key = tenant_secret(llm.api_key_env, settings)
        if api_key is None and not is_operator_llm_endpoint(llm.base_url, settings):
            api_key = PLACEHOLDER_KEY  # the engine would fall back to the operator's key
        return AgentConfig(
            name=self.name,
            system_prompt=self.prompt.compose(),
            welcome_message=render_vars(self.welcome_message, context),
            language=self.language,
            fallback_line=self.fallback_line,
            endpointing=self.endpointing,
            end_call=_within_ceiling(self.end_call, settings),
            transfer=self.transfer,
            dtmf_tool=self.dtmf_tool,
            voicemail=self.voicemail.model_copy(
                update={"message": render_vars(self.voicemail.message, context)}
            ),
            llm=LLMConfig(
                base_url=llm.base_url,
                model=llm.model,
                api_key=api_key,
                temperature=llm.temperature,
                max_tokens=llm.max_tokens,
            ),
            stt=self.stt,
            tts=self.tts,
            flow=self.flow,
            tools=self.tools,
            web_search=self.web_search,
            tool_secrets=tool_secrets(self.tools, self.web_search, settings),
        )


def _within_ceiling(end_call: EndCallConfig, settings: Any) -> EndCallConfig:
    """An agent saved before the operator lowered ``VOXLINE_MAX_CALL_DURATION_S`` still
    ends its calls at the ceiling (saves are refused above it; this covers the rest)."""
    ceiling = getattr(settings, "max_call_duration_s", None)
    if ceiling is None or end_call.max_duration_s <= ceiling:
        return end_call
    return end_call.model_copy(update={"max_duration_s": float(ceiling)})


_VAR = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def render_vars(text: str | None, context: dict[str, Any] | None) -> str | None:
    """``{{name}}`` in a welcome line becomes the call_context value (left as is if absent)."""
    if not text or not context:
        return text
    return _VAR.sub(lambda m: str(context.get(m.group(1), m.group(0))), text)


class AgentOut(BaseModel):
    id: str
    version: int
    created_at: UtcDateTime
    updated_at: UtcDateTime
    spec: AgentSpec


class AgentVersionOut(BaseModel):
    version: int
    created_at: UtcDateTime
    spec: AgentSpec


class PhoneNumberIn(Strict):
    number: str
    agent_id: str | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, v: str) -> str:
        return check_e164(v, "number")


class PhoneNumberOut(BaseModel):
    id: str
    number: str
    agent_id: str | None
    created_at: UtcDateTime
