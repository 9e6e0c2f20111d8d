"""Hypothesis strategies for what a peer can put on the wire: JSON of any shape, numbers
that are almost numbers, text that is almost a protocol's. The parser tests feed them to
each sans-I/O protocol and check that only the protocol's own error comes out."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded: every parser property runs in about a second on the 2-core machines, inside
# `make test`; the examples hypothesis found failing are kept in its database and
# replayed first.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Strings that look like numbers to str.isdigit() but not to int() (superscripts), or
# that int() refuses for size (over 4300 digits), beside plain and negative ones.
NUMBERISH = st.sampled_from(
    ["0", "1", "8000", "16000", "-1", "1.5", "", " 1", "²", "١٢", "𝟙", "9" * 5000, "1e3", "0x10"]
)
HUGE_INTS = st.sampled_from([2**63, -(2**63), 10**400, -(10**400)])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE_INTS
    | st.floats()
    | st.text(max_size=12)
    | NUMBERISH
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def loose(shape: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with some of ``shape``'s keys, each a fitting or an arbitrary value: near
    enough to valid to reach a parser's inner checks."""
    return st.fixed_dictionaries(
        {}, optional={key: strategy | json_values for key, strategy in shape.items()}
    )


def dumps(value: Any) -> str:
    """JSON text for ``value``, NaN and huge numbers included (as a peer may send)."""
    return json.dumps(value)


# Raw text frames that break JSON in the ways a parser may not expect.
HOSTILE_TEXT = st.sampled_from(
    [
        "[" * 100_000,
        '{"a":' * 50_000,
        "1" * 5000,
        '{"event": "media", "sequenceNumber": ' + "9" * 5000 + "}",
        '{"event": "connected"}\x00',
        "\ud800",
        '"\\ud800"',
        "NaN",
        "",
    ]
)
any_text = st.text() | HOSTILE_TEXT
