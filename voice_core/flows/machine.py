"""The flow as an explicit state machine: the caller's words in, what to do out.

No I/O and no clock: ``hear(text)`` returns outputs (say this line, ask the model, call
this tool, hang up, transfer) and moves the state; ``tool_done(result)`` continues after
a tool. The driver (``voice_core.flows.driver``) runs the outputs. Speculative replies
run on a ``fork()`` that is ``adopt``-ed only once the turn is really the caller's, so a
reply prepared in a pause and discarded leaves the flow where it was.

What the machine waits for after each turn (``Waiting``):

    OPEN          an open question ("How can I help?"): any value counts
    SLOT          it asked for one slot: a bare answer counts for that slot
    SLOT_CONFIRM  it read one value back ("I have 5 5 5 ..., is that right?")
    NODE_CONFIRM  it read every value back: yes -> next node, a value -> correct it
    CHANGE_WHAT   the caller said no: which value to change
    FREE          a respond=llm node: the model answers, the flow stays
    DONE          the call is ending
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from voice_core.flows.parse import Heard, Parsed, Refused, mentions, parse_slot, yes_no
from voice_core.flows.spec import FlowSpec, GlobalNode, NodeSpec, SlotSpec, ToolStep

_TEMPLATE = re.compile(r"\{([a-z][a-z0-9_.]*)(?::([a-z]+))?\}")
# What the caller may call a value when asked which one to change.
_SLOT_WORDS = {
    "weekday": ("day", "date"),
    "time": ("time", "hour"),
    "phone": ("number", "phone"),
    "name": ("name", "spelling", "surname"),
    "enum": ("service", "type", "kind", "appointment"),
}


class Waiting(Enum):
    OPEN = "open"
    SLOT = "slot"
    SLOT_CONFIRM = "slot_confirm"
    NODE_CONFIRM = "node_confirm"
    CHANGE_WHAT = "change_what"
    FREE = "free"
    DONE = "done"


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class AskModel:
    """Let the model answer the caller's words with this focused prompt (respond=llm)."""

    task: str
    user_text: str


@dataclass(frozen=True)
class CallTool:
    step: ToolStep
    arguments: dict[str, str]


@dataclass(frozen=True)
class EndCall:
    pass


@dataclass(frozen=True)
class Transfer:
    target: str


Output = Say | AskModel | CallTool | EndCall | Transfer


@dataclass
class FlowState:
    node: str
    waiting: Waiting = Waiting.OPEN
    asked: str | None = None  # the slot last asked for (SLOT, SLOT_CONFIRM)
    slots: dict[str, Heard] = field(default_factory=dict)
    confirmed: set[str] = field(default_factory=set)  # slots read back and agreed
    pending: Heard | None = None  # SLOT_CONFIRM: the value read back, not yet agreed
    misses: int = 0  # answers not understood in a row
    resume: str | None = None  # a global node interrupted this node
    tools: dict[str, Any] = field(default_factory=dict)  # each tool's last result
    last_user_text: str = ""
    node_confirmed: set[str] = field(default_factory=set)
    history: list[str] = field(default_factory=list)  # nodes visited, for the record
    refused: str | None = None  # the slot whose value was just refused (its line re-asks)
    completed: bool = False  # ended by the graph's own end (not a global node, not a fallback)


class FlowMachine:
    def __init__(self, spec: FlowSpec, *, today: int | None = None) -> None:
        self.spec = spec
        self.today = today  # 0 = Monday: 'tomorrow' needs it
        self.state = FlowState(node=spec.start)

    # ------------------------------------------------------------ speculation

    def fork(self) -> FlowMachine:
        twin = FlowMachine.__new__(FlowMachine)
        twin.spec, twin.today = self.spec, self.today
        twin.state = copy.deepcopy(self.state)
        return twin

    def adopt(self, other: FlowMachine) -> None:
        self.state = other.state

    # ------------------------------------------------------------ reading

    @property
    def done(self) -> bool:
        return self.state.waiting is Waiting.DONE

    def values(self) -> dict[str, str]:
        """The collected values, as stored (post-call variables)."""
        return {name: heard.value for name, heard in self.state.slots.items()}

    def expects_dictation(self) -> bool:
        """Asked for a phone number or a name (spelled): the caller dictates in groups."""
        _, asked = self.listening_for()
        return asked is not None and asked.type in ("phone", "name")

    def listening_for(self) -> tuple[list[SlotSpec], SlotSpec | None]:
        """What the caller may say next, for the ear's prompt: the slots the node still
        collects, and the one just asked for (read back) if any."""
        st = self.state
        if st.waiting in (Waiting.SLOT, Waiting.SLOT_CONFIRM) and st.asked is not None:
            return [], self.spec.slot(st.asked)
        if st.waiting is Waiting.OPEN:
            return [self.spec.slot(n) for n in self._missing(self._node())], None
        return [], None

    def asking_for(self) -> list[SlotSpec]:
        """The slots the current node still needs (what a model extractor should look for)."""
        node = self._node()
        return [self.spec.slot(s) for s in node.collect]

    # ------------------------------------------------------------ events

    def start(self) -> list[Output]:
        return self._enter(self.spec.start)

    def hear(
        self,
        text: str,
        extracted: dict[str, Any] | None = None,
        *,
        alternatives: list[str] | None = None,
    ) -> list[Output]:
        """The caller's turn. ``extracted``: values a capable model read from it
        (slot -> raw words, 'intent' -> a global node id, 'confirmed' -> bool); each is
        checked by the same typed parser before it counts. ``alternatives``: the ear's
        other hypotheses of the same words (its partials, newest last), consulted only
        for a value the final transcript does not yield."""
        st = self.state
        st.last_user_text = text
        st.refused = None
        if st.waiting is Waiting.DONE:
            return []
        extracted = extracted or {}
        node = self._node()
        found = self._values_in(text, node, extracted)
        wanted = st.asked if st.waiting is Waiting.SLOT else None
        if alternatives and (not found or (wanted and wanted not in found)):
            for alt in reversed(alternatives):
                more = self._values_in(alt, node, {})
                if wanted in more or (not found and more):
                    found = {**more, **found}
                    break
        chosen = self._global_for(text, extracted)
        if st.waiting is Waiting.FREE and not found and chosen is None:
            return [AskModel(node.task, text)]
        if st.waiting is Waiting.SLOT_CONFIRM:
            return self._slot_confirm(text, found, extracted, chosen)
        if st.waiting is Waiting.NODE_CONFIRM:
            return self._node_confirm(text, node, found, extracted, chosen)
        if st.waiting is Waiting.CHANGE_WHAT:
            return self._change_what(text, node, found, chosen)
        out = self._take(found)
        if chosen is not None and not (found and chosen.action == "none"):
            return out + self._global(chosen)
        if not found and not out:
            return self._not_understood(node) if st.waiting is Waiting.SLOT else self._ask(node)
        return out + self._progress(node)

    def tool_done(self, name: str, ok: bool, result: Any) -> list[Output]:
        """A tool the machine asked for has answered; continue the node that called it."""
        st = self.state
        st.tools[name] = result if ok else {"error": result}
        node = self._node()
        if not ok and node.on_tool_error:
            return self._enter(node.on_tool_error)
        return self._leave(node)

    # ------------------------------------------------------------ the steps

    def _node(self) -> NodeSpec:
        return self.spec.node(self.state.node)

    def _enter(self, node_id: str) -> list[Output]:
        st = self.state
        node = self.spec.node(node_id)
        st.node, st.misses, st.asked, st.pending = node_id, 0, None, None
        st.history.append(node_id)
        out: list[Output] = []
        if node.say:
            out.append(Say(self.render(node.say)))
        if node.collect:
            if node.say:
                st.waiting = Waiting.OPEN  # its line asked the question
                missing = self._missing(node)
                if not missing:
                    return out + self._progress(node)
                return out
            return out + self._progress(node)
        if node.tool is not None:
            return out + [CallTool(node.tool, self._arguments(node.tool))]
        if node.respond == "llm":
            st.waiting = Waiting.FREE
            return out
        return out + self._leave(node)

    def _leave(self, node: NodeSpec) -> list[Output]:
        """The node's work is done: its action, then a branch or the next node."""
        st = self.state
        if node.action in ("end_call", "transfer"):
            st.waiting = Waiting.DONE
            st.completed = node.id != self.spec.fallback_node
            if node.action == "end_call":
                return [EndCall()]
            return [Transfer(node.transfer_to or "")]
        for branch in node.branches:
            heard = st.slots.get(branch.slot)
            if heard is not None and heard.value.lower() == branch.equals.lower():
                return self._enter(branch.to)
        if node.next:
            return self._enter(node.next)
        if st.resume:
            back, st.resume = st.resume, None
            return self._enter(back)
        st.waiting = Waiting.DONE
        st.completed = True
        return [EndCall()]

    def _progress(self, node: NodeSpec) -> list[Output]:
        """Ask what is still missing, read back what needs it, or move on."""
        st = self.state
        for name in node.collect:
            slot = self.spec.slot(name)
            heard = st.slots.get(name)
            if heard is None:
                if slot.required:
                    return self._ask_slot(slot)
                continue
            if slot.confirm and name not in st.confirmed:
                st.waiting, st.asked, st.pending = Waiting.SLOT_CONFIRM, name, heard
                return [Say(self.render(slot.confirm))]
        if node.confirm and node.id not in st.node_confirmed:
            st.waiting, st.asked = Waiting.NODE_CONFIRM, None
            return [Say(self.render(node.confirm))]
        out: list[Output] = []
        if node.tool is not None:
            return out + [CallTool(node.tool, self._arguments(node.tool))]
        return out + self._leave(node)

    def _ask(self, node: NodeSpec) -> list[Output]:
        return self._progress(node)

    def _ask_slot(self, slot: SlotSpec, prefix: str = "") -> list[Output]:
        st = self.state
        st.waiting, st.asked = Waiting.SLOT, slot.name
        if st.refused == slot.name and slot.invalid:
            st.refused = None
            return []  # the refusal line ("which other day works?") asked it already
        return [Say(f"{prefix}{self.render(slot.prompt)}".strip())]

    def _not_understood(self, node: NodeSpec) -> list[Output]:
        st = self.state
        st.misses += 1
        if st.misses >= self.spec.max_retries and self.spec.fallback_node:
            return self._enter(self.spec.fallback_node)
        slot = self.spec.slot(st.asked) if st.asked else None
        if slot is None:
            return self._progress(node)
        if slot.reprompt:
            st.waiting, st.asked = Waiting.SLOT, slot.name
            return [Say(self.render(slot.reprompt))]
        return self._ask_slot(slot, self.spec.not_understood + " ")

    def _take(self, found: dict[str, Parsed]) -> list[Output]:
        """Store what was heard; a refused value is said why, and asked again."""
        st = self.state
        out: list[Output] = []
        for name, parsed in found.items():
            if isinstance(parsed, Heard):
                if st.slots.get(name) != parsed:
                    st.confirmed.discard(name)
                    st.node_confirmed.discard(st.node)
                st.slots[name] = parsed
                st.misses = 0
            elif isinstance(parsed, Refused):
                slot = self.spec.slot(name)
                st.slots.pop(name, None)
                st.refused = name
                line = slot.invalid or f"Sorry, {parsed.reason}."
                out.append(Say(self.render(line)))
                st.misses = 0
        return out

    def _slot_confirm(
        self, text: str, found: dict[str, Parsed], extracted: dict[str, Any], chosen: Any
    ) -> list[Output]:
        st = self.state
        name = st.asked or ""
        node = self._node()
        answer = _confirmation(text, extracted)
        corrected = found.get(name)
        if isinstance(corrected, Heard) and corrected != st.pending:
            # "no, it's 5 5 5 ..." : the new value is read back in turn.
            self._take({name: corrected})
            return self._progress(node)
        if answer is True:
            st.confirmed.add(name)
            out = self._take({k: v for k, v in found.items() if k != name})
            return out + self._progress(node)
        if answer is False:
            st.slots.pop(name, None)
            st.confirmed.discard(name)
            return self._ask_slot(self.spec.slot(name), "Sorry about that. ")
        if chosen is not None:
            return self._global(chosen)
        slot = self.spec.slot(name)
        return [Say(self.render(slot.confirm or ""))]

    def _node_confirm(
        self,
        text: str,
        node: NodeSpec,
        found: dict[str, Parsed],
        extracted: dict[str, Any],
        chosen: Any,
    ) -> list[Output]:
        st = self.state
        answer = _confirmation(text, extracted)
        changed = {k: v for k, v in found.items() if st.slots.get(k) != v}
        if changed:
            out = self._take(changed)
            return [Say("Got it."), *out, *self._progress(node)]
        if answer is True:
            st.node_confirmed.add(node.id)
            out: list[Output] = []
            if node.confirmed:
                out.append(Say(self.render(node.confirmed)))
            if node.tool is not None:
                return out + [CallTool(node.tool, self._arguments(node.tool))]
            return out + self._leave(node)
        if answer is False:
            st.waiting = Waiting.CHANGE_WHAT
            return [Say("Sorry about that. What should I change?")]
        if chosen is not None:
            return self._global(chosen)
        return [Say(self.render(node.confirm or ""))]

    def _change_what(
        self, text: str, node: NodeSpec, found: dict[str, Parsed], chosen: Any
    ) -> list[Output]:
        st = self.state
        changed = {k: v for k, v in found.items() if st.slots.get(k) != v}
        if changed:
            out = self._take(changed)
            return [*out, *self._progress(node)]
        for name in node.collect:
            slot = self.spec.slot(name)
            if mentions(text, [slot.name.replace("_", " "), *_SLOT_WORDS.get(slot.type, ())]):
                st.slots.pop(name, None)
                st.confirmed.discard(name)
                return self._ask_slot(slot)
        if chosen is not None:
            return self._global(chosen)
        if yes_no(text) is True:  # "actually it's fine"
            st.waiting = Waiting.NODE_CONFIRM
            return self._node_confirm(text, node, {}, {"confirmed": True}, None)
        return [Say("Which should I change: " + self._slot_list(node) + "?")]

    def _global(self, g: GlobalNode) -> list[Output]:
        st = self.state
        out: list[Output] = []
        if g.say:
            out.append(Say(self.render(g.say)))
        if g.respond == "llm":
            out.append(AskModel(g.task, st.last_user_text))
        if g.tool is not None:
            out.append(CallTool(g.tool, self._arguments(g.tool)))
        if g.action == "end_call":
            st.waiting = Waiting.DONE
            return out + [EndCall()]
        if g.action == "transfer":
            st.waiting = Waiting.DONE
            return out + [Transfer(g.transfer_to or "")]
        if g.then:
            return out + self._enter(g.then)
        # Back to what the caller was asked before the detour.
        return out + self._reask()

    def _reask(self) -> list[Output]:
        st = self.state
        node = self._node()
        if st.waiting is Waiting.SLOT_CONFIRM and st.asked:
            return [Say(self.render(self.spec.slot(st.asked).confirm or ""))]
        if st.waiting is Waiting.NODE_CONFIRM and node.confirm:
            return [Say(self.render(node.confirm))]
        if st.waiting is Waiting.FREE:
            return []
        return self._progress(node)

    # ------------------------------------------------------------ hearing

    def _values_in(self, text: str, node: NodeSpec, extracted: dict[str, Any]) -> dict[str, Parsed]:
        st = self.state
        found: dict[str, Parsed] = {}
        for name in node.collect:
            slot = self.spec.slot(name)
            asked = st.asked == name and st.waiting in (Waiting.SLOT, Waiting.SLOT_CONFIRM)
            parsed: Parsed = None
            raw = extracted.get(name)
            if raw not in (None, ""):
                # The model's reading, checked by the same parser (asked: it is the
                # model's answer for exactly this slot).
                parsed = parse_slot(slot, str(raw), asked=True, today=self.today)
            if parsed is None:
                parsed = parse_slot(slot, text, asked=asked, today=self.today)
            if parsed is not None:
                found[name] = parsed
        # A bare answer is a name only when nothing else was in it: "make it 10:30" is a
        # time, not Mr Make.
        for name in list(found):
            slot = self.spec.slot(name)
            if slot.type == "name" and len(found) > 1 and not extracted.get(name):
                if parse_slot(slot, text, asked=False, today=self.today) is None:
                    del found[name]
        return found

    def _global_for(self, text: str, extracted: dict[str, Any]) -> GlobalNode | None:
        intent = extracted.get("intent")
        for g in self.spec.global_nodes:
            if intent == g.id:
                return g
        for g in self.spec.global_nodes:
            if mentions(text, g.phrases):
                return g
        return None

    def _missing(self, node: NodeSpec) -> list[str]:
        return [n for n in node.collect if n not in self.state.slots]

    def _slot_list(self, node: NodeSpec) -> str:
        names = [n.replace("_", " ") for n in node.collect]
        return ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]

    def _arguments(self, step: ToolStep) -> dict[str, str]:
        return {k: self.render(v) for k, v in step.arguments.items()}

    def render(self, template: str) -> str:
        """``{slot}`` as spoken, ``{slot:value}`` as stored, ``{tools.name.field}``, and
        ``{last_user_text}``; a value not known yet renders empty."""
        st = self.state

        def one(m: re.Match[str]) -> str:
            name, fmt = m.group(1), m.group(2)
            if name == "last_user_text":
                return st.last_user_text
            if name.startswith("tools."):
                return _dig(st.tools, name.split(".")[1:])
            heard = st.slots.get(name)
            if heard is None:
                return ""
            return heard.value if fmt == "value" else heard.spoken

        return re.sub(r"\s+", " ", _TEMPLATE.sub(one, template)).strip()


def _confirmation(text: str, extracted: dict[str, Any]) -> bool | None:
    said = extracted.get("confirmed")
    if isinstance(said, bool):
        return said
    return yes_no(text)


def _dig(value: Any, path: list[str]) -> str:
    for key in path:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return ""
    if value is None:
        return ""
    return str(value)[:300]
