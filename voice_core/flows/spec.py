"""A conversation flow as the agent's config holds it: slots, nodes, global nodes.

A flow is a small graph the agent walks instead of hoping a model follows a long prompt.
Each node has one job (collect these slots, say this, call that tool, answer freely), the
values it collects are typed and validated, read back before they count, and every
action (hang up, transfer, call a tool) is the flow's decision, not the model's.

Spoken lines are templates over the collected values (``{day}``, ``{phone}``, a tool's
result ``{tools.check_slot.time}``): on a 135M model a template is the only text that
is reliably right; a node may still let the model answer (``respond: llm``) where free
words are the point (a question the flow did not foresee).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

_ID = r"^[a-z][a-z0-9_]{0,39}$"
_TEMPLATE_FIELD = re.compile(r"\{([a-z][a-z0-9_.]*)(?::([a-z]+))?\}")

SlotType = Literal["enum", "weekday", "time", "phone", "name", "yes_no", "integer", "text"]


class SlotSpec(BaseModel):
    """One value the flow collects: its type says how it is heard and checked."""

    name: str = Field(..., pattern=_ID)
    type: SlotType
    prompt: str = Field(..., min_length=1, max_length=300, description="how the agent asks")
    reprompt: str | None = Field(
        None,
        max_length=300,
        description="when the answer was not understood (default: "
        "'Sorry, I didn't catch that.' + prompt)",
    )
    values: dict[str, list[str]] = Field(
        default_factory=dict,
        description="enum: allowed value -> the words that mean it (the value itself counts)",
    )
    spoken: dict[str, str] = Field(
        default_factory=dict,
        description="enum: how a value is said in a template ('emergency' -> 'an emergency "
        "visit'); default the value itself",
    )
    allowed: list[str] | None = Field(
        None, description="weekday: the days that may be chosen (default: every day)"
    )
    between: tuple[str, str] | None = Field(
        None, description="time: earliest and latest allowed, 'HH:MM' 24 h"
    )
    min_digits: int = Field(7, ge=1, le=20, description="phone/integer: fewest digits")
    max_digits: int = Field(15, ge=1, le=20, description="phone/integer: most digits")
    invalid: str | None = Field(
        None, max_length=300, description="said when a heard value is not allowed"
    )
    confirm: str | None = Field(
        None,
        max_length=300,
        description="read this back (a template, e.g. 'I have {phone}. Is that right?') and "
        "keep the value only on a yes",
    )
    required: bool = True

    @field_validator("between")
    @classmethod
    def _clock_times(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is None:
            return None
        for t in value:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t):
                raise ValueError(f"time {t!r} must be HH:MM, 24 h")
        if value[0] >= value[1]:
            raise ValueError("between: the first time must be before the second")
        return value

    @model_validator(mode="after")
    def _typed(self) -> SlotSpec:
        if self.type == "enum" and not self.values:
            raise ValueError(f"slot {self.name}: an enum needs values")
        if self.min_digits > self.max_digits:
            raise ValueError(f"slot {self.name}: min_digits > max_digits")
        return self


class ToolStep(BaseModel):
    """Call one of the agent's tools (``tools``/``web_search``) with templated arguments."""

    name: str = Field(..., pattern=_ID)
    arguments: dict[str, str] = Field(
        default_factory=dict, description="argument -> template over slots and 'last_user_text'"
    )
    filler: str = Field(
        "One moment, please.",
        max_length=200,
        description="said if the tool takes longer than filler_after_ms",
    )
    filler_after_ms: int = Field(700, ge=0, le=10000)


class Branch(BaseModel):
    """Go to ``to`` when a slot holds a value (checked in order, after the node's work)."""

    slot: str = Field(..., pattern=_ID)
    equals: str
    to: str = Field(..., pattern=_ID)


class NodeSpec(BaseModel):
    id: str = Field(..., pattern=_ID)
    say: str | None = Field(None, max_length=1000, description="a template said on entry")
    task: str = Field(
        "", max_length=2000, description="respond=llm: the node's focused prompt for the model"
    )
    respond: Literal["template", "llm"] = Field(
        "template", description="llm: the model answers the caller's words with the task prompt"
    )
    collect: list[str] = Field(default_factory=list, description="slots this node fills")
    confirm: str | None = Field(
        None,
        max_length=600,
        description="read back every collected value (a template) before moving on; a no, "
        "or a new value ('no, Wednesday'), corrects and reads back again",
    )
    confirmed: str | None = Field(None, max_length=300, description="said after a yes")
    tool: ToolStep | None = None
    on_tool_error: str | None = Field(None, pattern=_ID, description="node to go to if it fails")
    action: Literal["none", "end_call", "transfer"] = "none"
    transfer_to: str | None = Field(None, description="action=transfer: the agent's target name")
    branches: list[Branch] = Field(default_factory=list)
    next: str | None = Field(None, pattern=_ID, description="where to go when the node is done")

    @model_validator(mode="after")
    def _coherent(self) -> NodeSpec:
        if self.action == "transfer" and not self.transfer_to:
            raise ValueError(f"node {self.id}: action transfer needs transfer_to")
        if self.respond == "llm" and not self.task:
            raise ValueError(f"node {self.id}: respond=llm needs a task prompt")
        return self


class GlobalNode(BaseModel):
    """Reachable from anywhere by what the caller says ('can I talk to a person', 'what are
    your hours'); after it, the flow goes back where it was (``resume``) or to ``then``."""

    id: str = Field(..., pattern=_ID)
    phrases: list[str] = Field(..., min_length=1, description="words or phrases that trigger it")
    say: str | None = Field(None, max_length=1000)
    task: str = Field("", max_length=2000)
    respond: Literal["template", "llm"] = "template"
    tool: ToolStep | None = None
    action: Literal["none", "end_call", "transfer"] = "none"
    transfer_to: str | None = None
    then: str | None = Field(None, pattern=_ID, description="go here instead of resuming")

    @field_validator("phrases")
    @classmethod
    def _phrases(cls, value: list[str]) -> list[str]:
        cleaned = [p.strip().lower() for p in value if p.strip()]
        if not cleaned:
            raise ValueError("phrases must not be empty")
        return cleaned


class FlowSpec(BaseModel):
    """The whole flow. Saved with the agent, so it is versioned with it."""

    start: str = Field(..., pattern=_ID)
    slots: list[SlotSpec] = Field(default_factory=list, max_length=50)
    nodes: list[NodeSpec] = Field(..., min_length=1, max_length=100)
    global_nodes: list[GlobalNode] = Field(default_factory=list, max_length=30)
    extraction: Literal["auto", "rules", "tools"] = Field(
        "auto",
        description="how values are heard: 'rules' the typed parsers only (the embedded "
        "model: 2 of 8 right when asked to classify, see docs/flows.md); "
        "'tools' the model's native tool calls on top of the parsers (a capable remote "
        "model); 'auto' = tools for a remote endpoint, rules for the embedded model",
    )
    not_understood: str = Field(
        "Sorry, I didn't catch that.", max_length=200, description="said before a reprompt"
    )
    summary: str | None = Field(
        None,
        max_length=600,
        description="the call's summary when the flow completed (a template over the "
        "values): grounded by construction, it replaces the model's summary",
    )
    summary_incomplete: str | None = Field(
        None, max_length=600, description="the summary when the caller left before the end"
    )
    max_retries: int = Field(
        3,
        ge=1,
        le=10,
        description="a slot not understood this many times in a row: go to fallback_node",
    )
    fallback_node: str | None = Field(
        None, pattern=_ID, description="where a caller who cannot be understood is taken"
    )

    @model_validator(mode="after")
    def _references(self) -> FlowSpec:
        node_ids = [n.id for n in self.nodes]
        global_ids = [g.id for g in self.global_nodes]
        slot_names = [s.name for s in self.slots]
        for label, ids in (("node", node_ids + global_ids), ("slot", slot_names)):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{label} ids must be unique; repeated: {', '.join(dupes)}")
        known = set(node_ids)
        if self.start not in known:
            raise ValueError(f"start: no node {self.start!r}")
        if self.fallback_node and self.fallback_node not in known:
            raise ValueError(f"fallback_node: no node {self.fallback_node!r}")
        slots = set(slot_names)
        for node in self.nodes:
            for target in [node.next, node.on_tool_error, *(b.to for b in node.branches)]:
                if target and target not in known:
                    raise ValueError(f"node {node.id}: goes to unknown node {target!r}")
            for slot in node.collect + [b.slot for b in node.branches]:
                if slot not in slots:
                    raise ValueError(f"node {node.id}: unknown slot {slot!r}")
            for text in (node.say, node.confirm, node.confirmed):
                _check_template(text, slots, f"node {node.id}")
        for g in self.global_nodes:
            if g.then and g.then not in known:
                raise ValueError(f"global node {g.id}: goes to unknown node {g.then!r}")
            _check_template(g.say, slots, f"global node {g.id}")
        for slot in self.slots:
            _check_template(slot.confirm, slots, f"slot {slot.name}")
        _check_template(self.summary, slots, "summary")
        _check_template(self.summary_incomplete, slots, "summary_incomplete")
        return self

    def node(self, node_id: str) -> NodeSpec:
        return next(n for n in self.nodes if n.id == node_id)

    def slot(self, name: str) -> SlotSpec:
        return next(s for s in self.slots if s.name == name)

    def tool_names(self) -> set[str]:
        steps = [n.tool for n in self.nodes] + [g.tool for g in self.global_nodes]
        return {t.name for t in steps if t is not None}

    def transfer_targets(self) -> set[str]:
        nodes: list[NodeSpec | GlobalNode] = [*self.nodes, *self.global_nodes]
        return {n.transfer_to for n in nodes if n.action == "transfer" and n.transfer_to}


def _check_template(text: str | None, slots: set[str], where: str) -> None:
    """A template may name the flow's slots, ``last_user_text`` and ``tools.<name>...``."""
    if not text:
        return
    for name, _fmt in _TEMPLATE_FIELD.findall(text):
        head = name.split(".")[0]
        if head not in slots and head not in ("tools", "last_user_text"):
            raise ValueError(f"{where}: template names unknown value {{{name}}}")
