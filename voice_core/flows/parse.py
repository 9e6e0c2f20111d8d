"""Typed values from what the caller said: a weekday, a time, a phone number, a spelled
name, yes or no, one of a list. Pure functions over the transcript.

They are the flow's ear for values because they are right where a 135M model is not
(asked to pick one of six dental services from a sentence it chose right 2 times in 8),
cost microseconds, and understand the way people dictate on the phone: "five five five,
one two three", "double four", "S-M-I-T-H", "half past two", "no, Wednesday".
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from difflib import SequenceMatcher

import jellyfish

from voice_core.flows.spec import SlotSpec

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_NUMBER_WORDS = {
    **{w: int(d) for w, d in _DIGIT_WORDS.items() if w not in ("oh", "o", "zero")},
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty": 40, "fourty": 40, "fifty": 50,
}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
_YES = (
    "yes", "yeah", "yep", "yup", "correct", "that's right", "that is right", "right",
    "sure", "perfect", "exactly", "sounds good", "that's it", "okay", "ok", "absolutely",
    "great", "please do", "go ahead", "uh huh", "of course", "affirmative", "yes please",
)  # fmt: skip
_NO = (
    "no", "nope", "nah", "not right", "wrong", "incorrect", "that's not", "that is not",
    "not quite", "actually", "change", "negative", "not correct", "isn't right",
)  # fmt: skip
_NAME_LEADS = (
    r"my name is", r"my name's", r"name is", r"this is", r"it's", r"it is", r"i'm",
    r"i am", r"call me", r"the name is", r"under",
)  # fmt: skip
_NOT_NAMES = {
    "yes", "no", "okay", "ok", "sure", "hi", "hey", "hello", "um", "uh", "well", "so", "and",
    "the", "a", "my", "name", "is", "it", "its", "it's", "i", "i'm", "please", "thanks",
    "thank", "you", "spelled", "spell", "that", "that's", "thats", "this", "last", "first",
    "surname",
    "calling", "here", "speaking", "sorry", "just", "like", "mister", "mrs", "miss", "ms",
    "mr", "doctor", "dr", "oh", "yeah", "right", "be", "for", "booking", "appointment",
    "make", "book", "need", "want", "can", "could", "would", "have", "get", "at",
    "on", "in", "what", "how", "why", "when", "where", "sounds", "good", "great", "fine",
}  # fmt: skip


@dataclass(frozen=True)
class Heard:
    """A value the caller gave: ``value`` is stored, ``spoken`` is how the agent says it."""

    value: str
    spoken: str


@dataclass(frozen=True)
class Refused:
    """The caller gave a value of the right kind that is not allowed (a Sunday)."""

    heard: str
    reason: str


Parsed = Heard | Refused | None


def words(text: str) -> list[str]:
    """Lower-case words with apostrophes kept ("that's"), everything else a separator."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def _has_phrase(text_words: list[str], phrase: str) -> int:
    """The word index where ``phrase`` starts (last occurrence), or -1."""
    p = phrase.split()
    last = -1
    for i in range(len(text_words) - len(p) + 1):
        if text_words[i : i + len(p)] == p:
            last = i
    return last


def mentions(text: str, phrases: list[str]) -> bool:
    w = words(text)
    return any(_has_phrase(w, phrase) >= 0 for phrase in phrases)


def yes_no(text: str) -> bool | None:
    """True for a yes, False for a no; a no wins ("yes, no wait"), None if neither."""
    w = words(text)
    first_no = min((i for p in _NO if (i := _has_phrase(w, p)) >= 0), default=None)
    first_yes = min((i for p in _YES if (i := _has_phrase(w, p)) >= 0), default=None)
    if first_no is not None and (first_yes is None or first_no <= first_yes + 2):
        # "no problem" / "no worries" is agreement, not a refusal
        if w[first_no : first_no + 2] in (["no", "problem"], ["no", "worries"]):
            return True
        return False
    if first_yes is not None:
        return True
    return None


def enum_value(text: str, values: dict[str, list[str]]) -> str | None:
    """The allowed value the caller named last ("not a filling, a cleaning" -> cleaning)."""
    w = words(text)
    best: tuple[int, int, str] | None = None  # (position, phrase length, value)
    for value, synonyms in values.items():
        for phrase in {value.lower().replace("-", " "), *(s.lower() for s in synonyms)}:
            at = _has_phrase(w, " ".join(words(phrase)))
            if at < 0:
                continue
            # "not a filling" refuses it; "no, a cleaning" corrects to it
            negated = _negated(w, at)
            key = (at if not negated else -1, len(phrase), value)
            if not negated and (best is None or key > best):
                best = key
    return best[2] if best else _sounds_like(w, values)


def _sounds_like(w: list[str], values: dict[str, list[str]]) -> str | None:
    """The one value a word nearly spells or sounds like, for the ear's near misses ("a
    fill-in", "a feeling" for "a filling"): long words only; two adjacent words joined
    count only for spelling ("fill in"), never for sound ("what are" is not "whiter")."""
    found: set[str] = set()
    for value, synonyms in values.items():
        for phrase in {value.lower().replace("-", ""), *(s.lower() for s in synonyms)}:
            if len(phrase) < 6 or " " in phrase:
                continue
            for at, word in enumerate(w):
                if len(word) >= 4 and _near(word, phrase, by_sound=True) and not _negated(w, at):
                    found.add(value)
            for at, (a, b) in enumerate(itertools.pairwise(w)):
                if _near(a + b, phrase, by_sound=False) and not _negated(w, at):
                    found.add(value)
    return found.pop() if len(found) == 1 else None


def _negated(w: list[str], at: int) -> bool:
    """'not a filling', 'not filling', 'without a cleaning'."""
    before = [x for x in w[max(0, at - 3) : at] if x not in ("a", "an", "the", "any")]
    return bool(before) and before[-1] in ("not", "don't", "without")


def _near(a: str, b: str, *, by_sound: bool) -> bool:
    """Nearly the same letters, or (long words) the same sound: Whisper's confusions are
    sound-alikes ("a feeling" for "a filling": both FLNK in Metaphone)."""
    if a == b:
        return False
    if SequenceMatcher(None, a, b).ratio() >= 0.85:
        return True
    return (
        by_sound
        and len(a) >= 6
        and len(b) >= 6
        and jellyfish.metaphone(a) == jellyfish.metaphone(b)
    )


def weekday(text: str, today: int | None = None) -> str | None:
    """A weekday name, last mentioned wins; 'tomorrow' etc. need ``today`` (0 = Monday)."""
    w = words(text)
    found: tuple[int, str] | None = None
    for i, word in enumerate(w):
        day = None
        if word.rstrip("s") in WEEKDAYS:
            day = word.rstrip("s")
        elif today is not None and word == "tomorrow":
            after = w[i - 2 : i] == ["day", "after"] if i >= 2 else False
            day = WEEKDAYS[(today + (2 if after else 1)) % 7]
        elif today is not None and word in ("today", "tonight"):
            day = WEEKDAYS[today]
        if day is not None and not (i > 0 and w[i - 1] == "not"):  # "no, Wednesday" corrects
            found = (i, day)
    return found[1] if found else None


def check_weekday(day: str, slot: SlotSpec) -> Parsed:
    allowed = [d.lower() for d in slot.allowed] if slot.allowed else list(WEEKDAYS)
    spoken = day.capitalize()
    if day not in allowed:
        return Refused(spoken, f"{spoken} is not available")
    return Heard(spoken, spoken)


_PERIODS = {"morning": "09:00", "noon": "12:00", "midday": "12:00", "afternoon": "14:00",
            "evening": "17:00"}  # fmt: skip


def clock_time(text: str) -> tuple[int, int, str] | None:
    """(hour 0-23, minute, how it was said) for the last time mentioned, or None.

    "10 am", "10:30", "ten thirty", "half past two", "quarter to three", "2 pm", "noon",
    "in the morning" (a period is the earliest time of it)."""
    # "9am", "2 p.m.", and the ear's "4p" are all a number and a meridiem
    low = re.sub(r"(\d)\s*([ap])\.?(?:\s*m\b\.?)?(?![a-z])", r"\1 \2m", text.lower())
    low = low.replace(".", "")
    # A weak "half" loses its h and its vowel on a phone line: the ear writes "F past 3",
    # "alf past", "have passed three"; "passed" is "past" misspelled by the ear.
    low = re.sub(r"\b(?:f|af|alf|arf|have|half)\s+pas(?:t|sed)\b", "half past", low)
    tokens = words(low.replace(":", " : "))
    best: tuple[int, tuple[int, int, str]] | None = None

    def num(tok: str) -> int | None:
        if tok.isdigit():
            return int(tok)
        return _NUMBER_WORDS.get(tok)

    for i, tok in enumerate(tokens):
        meridiem = None
        hour = minute = None
        if tok in ("noon", "midday"):
            hour, minute, meridiem = 12, 0, "pm"
        elif tok == "half" and tokens[i + 1 : i + 2] == ["past"] and i + 2 < len(tokens):
            h = num(tokens[i + 2])
            if h is not None and 1 <= h <= 12:
                hour, minute = h, 30
        elif tok == "quarter" and i + 2 < len(tokens) and tokens[i + 1] in ("past", "to"):
            h = num(tokens[i + 2])
            if h is not None and 1 <= h <= 12:
                hour, minute = (h, 15) if tokens[i + 1] == "past" else ((h - 2) % 12 + 1, 45)
        else:
            h = num(tok)
            if h is not None and 1 <= h <= 24 and not _inside_digits(tokens, i):
                rest = tokens[i + 1 : i + 4]
                m = 0
                if rest[:1] == [":"] and len(rest) > 1 and rest[1].isdigit():
                    m = int(rest[1])
                    rest = rest[2:]
                elif rest[:1] and rest[0].isdigit() and len(rest[0]) == 2:
                    m = int(rest[0])
                    rest = rest[1:]
                elif rest[:1] and rest[0] in ("fifteen", "thirty", "forty", "fourty"):
                    m = _NUMBER_WORDS[rest[0]]
                    if rest[0] in ("forty", "fourty") and rest[1:2] == ["five"]:
                        m, rest = 45, rest[1:]
                    rest = rest[1:]
                elif rest[:1] in (["o'clock"], ["oclock"]):
                    rest = rest[1:]
                if rest[:1] and rest[0] in ("am", "pm"):
                    meridiem = rest[0]
                elif rest[:2] in (["a", "m"], ["p", "m"]):
                    meridiem = rest[0] + "m"
                elif rest[:3] in (["in", "the", "morning"],):
                    meridiem = "am"
                elif rest[:3] in (["in", "the", "afternoon"], ["in", "the", "evening"]):
                    meridiem = "pm"
                said = tokens[i - 1] if i > 0 else ""
                # A bare number is a time only where a time is expected ("at 3", "3 pm");
                # a lone "14" is as likely the ear mangling "4 pm" as a 24-hour time.
                if meridiem or m or said in _TIME_LEADS:
                    if m < 60:
                        hour, minute = h, m
        if hour is None:
            continue
        if meridiem == "pm" and hour < 12:
            hour += 12
        elif meridiem == "am" and hour == 12:
            hour = 0
        elif meridiem is None and 1 <= hour <= 6:
            hour += 12  # "at 3" on a business line means the afternoon
        assert minute is not None
        best = (i, (hour % 24, minute, ""))
    if best is None:
        for period, at in _PERIODS.items():
            if period in tokens:
                h, m = (int(x) for x in at.split(":"))
                return h, m, period
        return None
    return best[1]


_TIME_LEADS = ("at", "around", "round", "about", "by", "say", "maybe", "before", "after")


def _inside_digits(tokens: list[str], i: int) -> bool:
    """Part of a dictated number ("5 5 5 1 2 3"): neighbours that are digits too."""

    def digit(t: str) -> bool:
        return t.isdigit() or t in _DIGIT_WORDS

    neighbours = tokens[max(0, i - 2) : i] + tokens[i + 1 : i + 3]
    return sum(digit(t) for t in neighbours) >= 3


def spoken_time(hour: int, minute: int) -> str:
    meridiem = "am" if hour < 12 else "pm"
    h12 = hour % 12 or 12
    if hour == 12 and minute == 0:
        return "noon"
    return f"{h12} {meridiem}" if minute == 0 else f"{h12}:{minute:02d} {meridiem}"


def check_time(found: tuple[int, int, str], slot: SlotSpec) -> Parsed:
    hour, minute, period = found
    value = f"{hour:02d}:{minute:02d}"
    # With its preposition, so a template reads "on Tuesday {time}" either way.
    spoken = f"at {spoken_time(hour, minute)}"
    if period in ("morning", "afternoon", "evening"):
        spoken = f"in the {period}"
    if slot.between and not (slot.between[0] <= value <= slot.between[1]):
        return Refused(spoken, f"{spoken} is outside the hours")
    return Heard(value, spoken)


def digits(text: str) -> str:
    """Every digit the caller dictated, in order: numerals, digit words, "double five"."""
    out: list[str] = []
    repeat = 1
    for tok in re.findall(r"[a-z]+|\d", text.lower()):
        if tok in _REPEAT:
            repeat = _REPEAT[tok]
            continue
        d = tok if tok.isdigit() else _DIGIT_WORDS.get(tok)
        if d is None:
            repeat = 1
            continue
        if tok == "o" and not out:
            continue  # "o" alone at the start is more likely "oh, ..." than zero
        out.append(d * repeat)
        repeat = 1
    return "".join(out)


def check_phone(found: str, slot: SlotSpec) -> Parsed:
    spoken = group_digits(found)
    if not slot.min_digits <= len(found) <= slot.max_digits:
        return Refused(spoken, f"a phone number has {slot.min_digits} to {slot.max_digits} digits")
    return Heard(found, spoken)


def group_digits(number: str) -> str:
    """'5551234567' -> '5 5 5, 1 2 3, 4 5 6 7': read back the way people dictate it."""
    if len(number) == 10:
        groups = [number[:3], number[3:6], number[6:]]
    elif len(number) == 7:
        groups = [number[:3], number[3:]]
    else:
        groups = [number[i : i + 3] for i in range(0, len(number), 3)]
    return ", ".join(" ".join(g) for g in groups)


# Letter names as Whisper writes them when it hears a word, not a letter: over a phone
# line "K, O, W" comes out "Hey, oh, W". Only inside a run of real single letters, so
# "oh, you see" in a sentence stays words.
_LETTER_NAMES = {
    "hey": "k", "kay": "k", "okay": "k", "oh": "o", "owe": "o", "bee": "b", "be": "b",
    "see": "c", "sea": "c", "cee": "c", "dee": "d", "ee": "e", "eff": "f", "gee": "g",
    "aitch": "h", "eye": "i", "hi": "i", "jay": "j", "el": "l", "ell": "l", "em": "m",
    "en": "n", "pee": "p", "pea": "p", "cue": "q", "queue": "q", "are": "r", "ar": "r",
    "ess": "s", "tee": "t", "tea": "t", "you": "u", "vee": "v", "ex": "x", "why": "y",
    "zee": "z", "zed": "z", "ay": "a", "eh": "a",
}  # fmt: skip
_SPELL_TOKEN = re.compile(r"double[\s-]+(?:you|u|it|in)\b|[A-Za-z][A-Za-z']*|[^A-Za-z\s.,-]+")


def spelled(text: str) -> str | None:
    """Letters spelled one by one ("S-M-I-T-H", "s m i t h", "S. M. I. T. H.", and
    "Hey, oh, W, A" heard for "K, O, W, A"), joined; the last run of them."""
    runs: list[list[tuple[str, bool]]] = [[]]
    for match in _SPELL_TOKEN.finditer(text):
        token = match.group().lower()
        if token.startswith("double"):
            runs[-1].append(("w", False))
        elif len(token) == 1 and token.isalpha():
            runs[-1].append((token, True))
        elif token in _LETTER_NAMES:
            runs[-1].append((_LETTER_NAMES[token], False))
        elif runs[-1]:
            runs.append([])
    best = None
    for run in runs:
        # Mostly real letters: "Hey, oh" before "W, A, L, S" is spelling; "oh, you see"
        # with one "I" after it is a sentence.
        real = sum(1 for _, single in run if single)
        if real >= 3 and real * 2 >= len(run):
            best = run
    if best is None:
        return None
    letters = "".join(letter for letter, _ in best)
    return letters.capitalize() if len(letters) >= 2 else None


def person_name(text: str, asked: bool) -> str | None:
    """A caller's name: after 'my name is' / 'this is', or a short answer when asked;
    a spelled surname ("Smith, S-M-I-T-H") decides how it is written."""
    cleaned = re.sub(r"(?:(?<!['\w])[A-Za-z]\b[\s.,-]*){3,}", " ", text)  # spelled letters aside
    w = [t for t in re.findall(r"[A-Za-z][A-Za-z'-]*", cleaned)]
    low = [t.lower() for t in w]
    candidate: list[str] = []
    for lead in sorted(_NAME_LEADS, key=len, reverse=True):
        at = _has_phrase(low, lead)
        if at >= 0:
            candidate = w[at + len(lead.split()) : at + len(lead.split()) + 3]
            break
    else:
        if asked and 0 < len(w) <= 4:
            candidate = w
    candidate = [c for c in candidate if c.lower() not in _NOT_NAMES]
    # Stop at words a name does not run into ("John Smith and my number ...").
    name_words: list[str] = []
    for c in candidate:
        if c.lower() in ("and", "but", "from", "at", "on", "with"):
            break
        name_words.append(c.capitalize())
    letters = spelled(text)
    if letters:
        # The spelled form is the authority on the surname's writing; the first word
        # said is the first name ("Peter, uh, Kowalski, K-O-W-...").
        if len(name_words) >= 2:
            name_words = [name_words[0], reconcile(name_words[-1], letters)]
        elif name_words and _close(name_words[0], letters):
            name_words = [reconcile(name_words[0], letters)]
        elif name_words:
            name_words = [name_words[0], letters]
        else:
            name_words = [letters]
    if not name_words:
        return None
    return " ".join(name_words[:3])


def _close(a: str, b: str) -> bool:
    """Same first letter and similar length: a misheard surname and its spelling."""
    return a[:1].lower() == b[:1].lower() and abs(len(a) - len(b)) <= 2


# Letters that sound alike over a phone line (the "E-set" and friends): a spelling that
# differs from the spoken word only by these is the ear mishearing a letter, not the
# caller correcting the word.
_LETTER_GROUPS = ("bcdegptvz", "ajk", "fsx", "mn", "qu")


def _same_letter_sound(a: str, b: str) -> bool:
    return a == b or any(a in g and b in g for g in _LETTER_GROUPS)


def reconcile(word: str, letters: str) -> str:
    """The surname as spelled, unless the spelling is the spoken word misheard: same
    length with only sound-alike letters different, or one letter dropped or added."""
    w, s = word.lower(), letters.lower()
    if len(w) == len(s) and all(_same_letter_sound(x, y) for x, y in zip(w, s, strict=True)):
        return word.capitalize()
    if abs(len(w) - len(s)) == 1:
        longer, shorter = (w, s) if len(w) > len(s) else (s, w)
        if any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer))):
            return word.capitalize()
    return letters.capitalize()


def parse_slot(slot: SlotSpec, text: str, *, asked: bool, today: int | None = None) -> Parsed:
    """The slot's value in ``text``. ``asked``: the agent just asked for this slot, so a
    bare answer counts ("Smith", "Tuesday"); otherwise only unmistakable mentions do."""
    if slot.type == "enum":
        value = enum_value(text, slot.values)
        return Heard(value, slot.spoken.get(value, value)) if value else None
    if slot.type == "weekday":
        day = weekday(text, today)
        return check_weekday(day, slot) if day else None
    if slot.type == "time":
        found = clock_time(text)
        return check_time(found, slot) if found else None
    if slot.type == "phone":
        number = digits(text)
        if not number or (not asked and len(number) < slot.min_digits):
            return None
        return check_phone(number, slot)
    if slot.type == "name":
        # Letters spelled one by one are a name being given, asked for or not.
        name = person_name(text, asked or spelled(text) is not None)
        return Heard(name, name) if name else None
    if slot.type == "yes_no":
        if not asked:
            return None
        answer = yes_no(text)
        if answer is None:
            return None
        return Heard("yes", "yes") if answer else Heard("no", "no")
    if slot.type == "integer":
        found = re.findall(r"\d+", text) or ([digits(text)] if digits(text) else [])
        if not found or not asked:
            return None
        return Heard(found[-1], found[-1])
    if slot.type == "text":
        stripped = text.strip()
        return Heard(stripped, stripped) if asked and stripped else None
    return None
