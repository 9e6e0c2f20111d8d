"""Campaign contacts from JSON rows or CSV text: validated row by row.

Pure functions: every row is accepted or rejected with its reason, never dropped.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from api.schemas import E164

PHONE_COLUMNS = ("phone_number", "phone", "number", "to", "to_number", "mobile")
MAX_CONTACTS_PER_REQUEST = 100_000


class ContactsError(ValueError):
    """The upload as a whole is unusable (no rows, no phone column); names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Rejected:
    row: int  # 1-based data row (CSV header not counted)
    phone_number: str | None
    reason: str


@dataclass
class ParsedContacts:
    accepted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def normalize_phone(raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    # People paste "+1 (415) 555-0123"; keep the plus and the digits.
    cleaned = ("+" if text.startswith("+") else "") + "".join(ch for ch in text if ch.isdigit())
    return cleaned if E164.match(cleaned) else None


def validate_rows(rows: list[dict[str, Any]], existing: set[str] | None = None) -> ParsedContacts:
    if len(rows) > MAX_CONTACTS_PER_REQUEST:
        raise ContactsError(
            "contacts", f"at most {MAX_CONTACTS_PER_REQUEST} contacts per request, got {len(rows)}"
        )
    seen = set(existing or ())
    out = ParsedContacts()
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            out.rejected.append(Rejected(i, None, "row must be an object"))
            continue
        key = next((c for c in PHONE_COLUMNS if c in row), None)
        raw = row.get(key) if key else None
        if raw in (None, ""):
            out.rejected.append(Rejected(i, None, "missing phone_number"))
            continue
        phone = normalize_phone(raw)
        if phone is None:
            out.rejected.append(
                Rejected(i, str(raw), "phone_number must be E.164, like +14155550123")
            )
            continue
        if phone in seen:
            out.rejected.append(Rejected(i, phone, "duplicate phone_number"))
            continue
        seen.add(phone)
        variables = {k: v for k, v in row.items() if k != key}
        out.accepted.append((phone, variables))
    return out


def parse_csv(text: str) -> list[dict[str, Any]]:
    """CSV text -> rows; the phone column is found by name, other columns are variables."""
    if text.startswith("\ufeff"):  # Excel writes a BOM
        text = text[1:]
    if not text.strip():
        raise ContactsError("contacts_csv", "the CSV is empty")
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not any(h in PHONE_COLUMNS for h in header):
        raise ContactsError(
            "contacts_csv",
            "the CSV has no phone column; name one of: " + ", ".join(PHONE_COLUMNS),
        )
    reader.fieldnames = header
    rows = [
        {k: (v.strip() if isinstance(v, str) else v) for k, v in r.items() if k}
        for r in reader
        if any((v or "").strip() for v in r.values() if isinstance(v, str))
    ]
    if not rows:
        raise ContactsError("contacts_csv", "the CSV has a header but no rows")
    return rows
