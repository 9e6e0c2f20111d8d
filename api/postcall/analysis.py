"""Post-call analysis with the agent's LLM: a summary, the caller's sentiment and the
agent's extraction variables, as JSON constrained by a JSON schema.

llama.cpp (the embedded model) turns ``response_format: json_schema`` into a grammar,
so even a 135M model emits parseable JSON with the declared keys. Endpoints that
refuse ``json_schema`` get ``json_object``, then a plain prompt. Whatever comes
back is validated against the definitions: a value that is missing or of the wrong
type is stored as null, never guessed, and free-text values must be grounded in the
transcript (a small model likes to invent a plausible name). Junk (no JSON, or
nothing valid) is retried once.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import openai

log = logging.getLogger(__name__)

SENTIMENTS = ("positive", "neutral", "negative")
MAX_SUMMARY = 2000
# Sent with every analysis request: the first attempt is greedy (temperature 0) and the
# retry samples, and with a fixed seed llama.cpp (and other endpoints that honour
# ``seed``) gives the same analysis for the same transcript every time: a call's
# analysis can be reproduced, and a test on it cannot flip on a coin.
ANALYSIS_SEED = 20261
_JSON_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "date": "string",
}


@dataclass
class Variable:
    """An extraction variable (the shape of ``api.schemas.ExtractionVariable``)."""

    key: str
    description: str
    type: str = "string"
    enum: list[str] | None = None


@dataclass
class AnalysisResult:
    summary: str | None = None
    sentiment: dict[str, Any] | None = None
    extracted: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    raw: str = ""
    attempts: int = 0
    latency_ms: float = 0.0
    model: str = ""

    @property
    def valid_parts(self) -> int:
        return (
            (self.summary is not None)
            + (self.sentiment is not None)
            + sum(v is not None for v in self.extracted.values())
        )


def apply_flow(result: AnalysisResult, outcome: dict[str, Any] | None) -> AnalysisResult:
    """A flow agent's call: the values its flow collected were validated (typed parsers)
    and read back to the caller, so they replace the model's reading of the same keys and
    every collected value is extracted; the flow's summary, a template over those values,
    replaces the model's. The model still judges the sentiment."""
    if not outcome:
        return result
    values = outcome.get("values") or {}
    for key, value in values.items():
        result.extracted[key] = value
    result.problems = [p for p in result.problems if p.split(":")[0] not in values]
    if outcome.get("summary"):
        result.summary = outcome["summary"]
    return result


def variable_schema(var: Variable) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [_JSON_TYPES[var.type], "null"]}
    if var.enum:
        schema = {"enum": [*var.enum, None]}
    elif var.type == "date":
        # [0-9], not \d: llama.cpp's schema-to-grammar converter knows no \d
        schema["pattern"] = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
    return schema


def response_schema(variables: list[Variable]) -> dict[str, Any]:
    # Key order is generation order under a grammar: the short, structured parts come
    # first, and the free-text summary last, so a model that rambles until max_tokens
    # cuts it off loses only the summary's tail (``parse_json`` closes the string).
    return {
        "type": "object",
        "properties": {
            "extracted": {
                "type": "object",
                "properties": {v.key: variable_schema(v) for v in variables},
                "required": [v.key for v in variables],
                "additionalProperties": False,
            },
            "sentiment": {
                "type": "object",
                "properties": {
                    "label": {"enum": list(SENTIMENTS)},
                    "score": {"type": "number"},
                },
                "required": ["label", "score"],
                "additionalProperties": False,
            },
            "summary": {"type": "string"},
        },
        "required": ["extracted", "sentiment", "summary"],
        "additionalProperties": False,
    }


def transcript_lines(transcript: list[dict[str, Any]], max_chars: int) -> str:
    text = "\n".join(
        f"{line.get('speaker', '?')}: {str(line.get('text', '')).strip()}"
        for line in transcript
        if str(line.get("text", "")).strip()
    )
    if len(text) > max_chars:
        # Keep the opening (who and why) and the end (what was agreed).
        half = max_chars // 2
        text = text[:half] + "\n[...]\n" + text[-half:]
    return text


def build_messages(text: str, variables: list[Variable]) -> list[dict[str, str]]:
    wanted = "\n".join(
        f"- {v.key} ({v.type}{', one of ' + ', '.join(v.enum) if v.enum else ''}): {v.description}"
        for v in variables
    )
    instructions = (
        "Analyse the phone call transcript. Reply with one JSON object:\n"
        '"extracted": these values, exactly as said in the call, or null when the call '
        "does not say them (never guess):\n" + (wanted or "(none)") + "\n"
        '"sentiment": the caller\'s sentiment, {"label": "positive" | "neutral" | '
        '"negative", "score": a number from -1 (very negative) to 1 (very positive)};\n'
        '"summary": one short sentence: what the caller wanted and the outcome.'
    )
    return [
        {"role": "system", "content": "You turn call transcripts into JSON. JSON only."},
        {"role": "user", "content": f"{instructions}\n\nTranscript:\n{text}"},
    ]


def parse_json(raw: str) -> dict[str, Any] | None:
    """The JSON object in ``raw``: as is, wrapped in prose or a code fence, or cut off
    by max_tokens inside the final string (closed here)."""
    raw = raw.strip()
    candidates = [raw]
    if "{" in raw:
        inner = raw[raw.find("{") :]
        candidates += [inner[: inner.rfind("}") + 1], inner + '"}', inner + '"}}', inner + "}"]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


_WORD = re.compile(r"[a-z0-9]+")


def grounded(value: str, transcript: str) -> bool:
    """``value`` is taken from the transcript: every number in it was said, and at least
    half of its words (3+ letters) were. "Maria Lopez" passes for "I'm Maria Lopez";
    "insurance_number_2023" does not pass because the call said "insurance"."""
    said = set(_WORD.findall(transcript.lower()))
    tokens = _WORD.findall(value.lower())
    numbers = [t for t in tokens if t.isdigit()]
    words = [t for t in tokens if not t.isdigit() and len(t) >= 3]
    if not numbers and not words:
        return False
    if any(n not in said for n in numbers):
        return False
    return not words or 2 * sum(w in said for w in words) >= len(words)


_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_TENS = {
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
}


def number_said(value: float, transcript: str) -> bool:
    """The number occurs in the transcript, in digits or (up to 20, or a round ten) words."""
    said = _WORD.findall(transcript.lower())
    text = str(int(value)) if float(value).is_integer() else str(value)
    if text in said or str(value) in transcript:
        return True
    words = {w: i for i, w in enumerate(_NUMBER_WORDS)} | _TENS
    return any(words.get(w) == value for w in said)


def date_said(value: date, transcript: str) -> bool:
    """Some part of the date (its month's name, day of month or year) was said."""
    said = set(_WORD.findall(transcript.lower()))
    month = value.strftime("%B").lower()
    return bool({month, month[:3], str(value.day), str(value.year)} & said)


def first_sentences(text: str, n: int = 2, max_chars: int = 400) -> str:
    """At most ``n`` sentences and ``max_chars``: small models repeat themselves until
    max_tokens stops them."""
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    out = " ".join(parts[:n])
    if len(out) > max_chars:
        out = out[:max_chars].rsplit(" ", 1)[0].rstrip(",;: ") + "…"
    return out


def validate_value(var: Variable, value: Any, transcript: str) -> tuple[Any, str | None]:
    """``(value or None, problem or None)``."""
    if value is None:
        return None, None
    if var.enum:
        if isinstance(value, str):
            for option in var.enum:
                if option.lower() == value.strip().lower():
                    return option, None
        return None, f"{var.key}: {value!r} is not one of {var.enum}"
    if var.type == "boolean":
        return (value, None) if isinstance(value, bool) else (None, f"{var.key}: not a boolean")
    if var.type in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"{var.key}: not a {var.type}"
        if var.type == "integer" and isinstance(value, float) and not value.is_integer():
            return None, f"{var.key}: {value} is not an integer"
        if not number_said(value, transcript):
            return None, f"{var.key}: {value} does not occur in the transcript"
        return (int(value) if var.type == "integer" else value), None
    if not isinstance(value, str):
        return None, f"{var.key}: not a string"
    value = value.strip()
    if not value or value.lower() in ("null", "none", "unknown", "n/a"):
        return None, None
    if var.type == "date":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None, f"{var.key}: {value!r} is not a YYYY-MM-DD date"
        if not date_said(day, transcript):
            return None, f"{var.key}: {value} is not said in the transcript"
        return day.isoformat(), None
    if not grounded(value, transcript):
        return None, f"{var.key}: {value!r} does not occur in the transcript"
    return value, None


def validate(
    data: dict[str, Any] | None, variables: list[Variable], transcript: str
) -> AnalysisResult:
    result = AnalysisResult(extracted={v.key: None for v in variables})
    if data is None:
        result.problems.append("the reply is not a JSON object")
        return result
    summary = data.get("summary")
    if isinstance(summary, str) and summary.strip():
        result.summary = first_sentences(summary)[:MAX_SUMMARY]
    else:
        result.problems.append("summary: missing or not a string")
    sentiment = data.get("sentiment")
    if isinstance(sentiment, dict) and str(sentiment.get("label", "")).lower() in SENTIMENTS:
        score = sentiment.get("score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            score = None
        elif not -1 <= score <= 1:
            # Grammars do not bound numbers: a model that says 1e15 means "very".
            score = max(-1.0, min(1.0, float(score)))
        result.sentiment = {
            "label": str(sentiment["label"]).lower(),
            "score": None if score is None else round(float(score), 3),
        }
    else:
        result.problems.append("sentiment: missing or label not positive/neutral/negative")
    extracted = data.get("extracted")
    if not isinstance(extracted, dict):
        extracted = {}
        if variables:
            result.problems.append("extracted: missing or not an object")
    for var in variables:
        value, problem = validate_value(var, extracted.get(var.key), transcript)
        result.extracted[var.key] = value
        if problem:
            result.problems.append(problem)
    return result


class LLMUnavailable(Exception):
    """The endpoint could not be reached or failed: worth retrying later."""


@dataclass
class Endpoint:
    base_url: str
    model: str
    api_key: str | None = None


class Analyzer:
    """Runs analyses against OpenAI-compatible endpoints (clients kept per endpoint)."""

    # response_format modes, best first; an endpoint that rejects one drops to the next
    MODES = ("json_schema", "json_object", "none")

    def __init__(
        self, timeout_s: float = 60.0, max_tokens: int = 160, seed: int = ANALYSIS_SEED
    ) -> None:
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.seed = seed
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self._mode: dict[str, int] = {}

    def _client(self, endpoint: Endpoint) -> openai.AsyncOpenAI:
        key = (endpoint.base_url, endpoint.api_key or "")
        if key not in self._clients:
            self._clients[key] = openai.AsyncOpenAI(
                base_url=endpoint.base_url,
                api_key=endpoint.api_key or "not-needed",
                timeout=httpx.Timeout(self.timeout_s, connect=5.0),
                max_retries=0,  # the job queue retries, with backoff
            )
        return self._clients[key]

    async def _complete(
        self,
        endpoint: Endpoint,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        temperature: float,
    ) -> str:
        client = self._client(endpoint)
        while True:
            mode = self.MODES[self._mode.get(endpoint.base_url, 0)]
            kwargs: dict[str, Any] = {}
            if mode == "json_schema":
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "call_analysis", "schema": schema, "strict": True},
                }
            elif mode == "json_object":
                kwargs["response_format"] = {"type": "json_object"}
            try:
                # Streamed, though nothing reads it early: a job cancelled because a live
                # turn started closes the stream, and llama.cpp stops at its next token
                # (a plain request is generated to the end, holding the slot and CPU).
                stream = await client.chat.completions.create(
                    model=endpoint.model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=temperature,
                    max_tokens=self.max_tokens,
                    seed=self.seed,
                    stream=True,
                    **kwargs,
                )
                parts: list[str] = []
                try:
                    async for chunk in stream:
                        if chunk.choices and chunk.choices[0].delta.content:
                            parts.append(chunk.choices[0].delta.content)
                finally:
                    await stream.close()
            except openai.BadRequestError as exc:
                if mode == "none":
                    raise LLMUnavailable(f"endpoint refused the request: {exc}") from exc
                log.info(
                    "%s refused response_format %s (%s); trying the next",
                    endpoint.base_url,
                    mode,
                    exc,
                )
                self._mode[endpoint.base_url] = self._mode.get(endpoint.base_url, 0) + 1
                continue
            except (openai.APIError, httpx.HTTPError) as exc:
                raise LLMUnavailable(f"{type(exc).__name__}: {exc}") from exc
            return "".join(parts)

    async def analyze(
        self,
        endpoint: Endpoint,
        transcript: list[dict[str, Any]],
        variables: list[Variable],
        *,
        max_chars: int = 4000,
    ) -> AnalysisResult:
        text = transcript_lines(transcript, max_chars)
        messages = build_messages(text, variables)
        schema = response_schema(variables)
        started = time.perf_counter()
        best: AnalysisResult | None = None
        for attempt in (1, 2):
            # The retry samples (temperature > 0; seeded, so reproducible): a greedy retry
            # repeats the same junk.
            raw = await self._complete(endpoint, messages, schema, 0.0 if attempt == 1 else 0.7)
            result = validate(parse_json(raw), variables, text)
            result.raw, result.attempts = raw[:4000], attempt
            if best is None or result.valid_parts > best.valid_parts:
                best = result
            junk = parse_json(raw) is None or (result.summary is None and result.sentiment is None)
            if not junk:
                break
            log.warning("analysis reply %d was junk (%s): %.200r", attempt, result.problems, raw)
        assert best is not None
        best.latency_ms = (time.perf_counter() - started) * 1000
        best.model = endpoint.model
        return best

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
