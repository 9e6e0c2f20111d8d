"""Whatever mod_audio_fork or jambonz (or anyone who reaches the port) sends, the sans-I/O
protocol answers with events or its own ProtocolError."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.freeswitch.audio_fork import AudioForkProtocol, Dialect, ProtocolError
from tests.gateway.fuzz import FUZZ, NUMBERISH, any_text, dumps, json_values

rates = st.sampled_from([8000, 16000, "8000", 44100, True]) | NUMBERISH | json_values
metadata = st.fixed_dictionaries(
    {},
    optional={
        "sampleRate": rates,
        "mixType": st.sampled_from(["mono", "stereo"]) | json_values,
        "metadata": json_values,
        "callSid": json_values,
        "agent_id": json_values,
    },
).map(dumps)
later = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["dtmf", "other"]) | json_values,
        "dtmf": st.text(max_size=2) | json_values,
        "type": st.sampled_from(["playDone", "x"]) | json_values,
    },
).map(dumps)


@FUZZ
@example(Dialect.AUDIO_FORK, ['{"sampleRate": "\u00b2"}'])  # isdigit() yet not int()
@example(Dialect.JAMBONZ, ['{"sampleRate": 8000, "n": ' + "1" * 5000 + "}"])
@given(
    st.sampled_from(list(Dialect)),
    st.lists(metadata | later | any_text | st.binary(max_size=200), max_size=8),
)
def test_any_frames_raise_only_audio_fork_protocol_errors(
    dialect: Dialect, frames: list[str | bytes]
) -> None:
    proto = AudioForkProtocol(dialect)
    for frame in frames:
        try:
            if isinstance(frame, bytes):
                proto.receive_bytes(frame)
            else:
                proto.receive_text(frame)
        except ProtocolError:
            pass
