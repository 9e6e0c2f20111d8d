from voice_core.chunker import ClauseChunker


def stream(text: str, chunker: ClauseChunker | None = None) -> list[str]:
    """Feed text as an LLM would: a few characters per token."""
    c = chunker or ClauseChunker()
    out: list[str] = []
    for i in range(0, len(text), 3):
        out.extend(c.push(text[i : i + 3]))
    out.extend(c.flush())
    return out


def test_first_clause_is_cut_at_a_comma_for_fast_first_audio() -> None:
    clauses = stream("Sure thing, I can book that for you, what day works best? Tuesday is open.")
    assert clauses[0] == "Sure thing,"
    # later clauses prefer whole sentences
    assert clauses[1:] == ["I can book that for you, what day works best?", "Tuesday is open."]


def test_no_cut_inside_abbreviations_or_decimals() -> None:
    clauses = stream("Dr. Smith sees patients at 3.30 on Fridays. Anything else?")
    assert clauses == ["Dr. Smith sees patients at 3.30 on Fridays.", "Anything else?"]


def test_a_comma_too_early_does_not_make_a_one_word_clause() -> None:
    clauses = stream("Well, that depends on the day.")
    assert clauses == ["Well, that depends on the day."]


def test_markdown_is_not_spoken() -> None:
    assert stream("**Great!** We are open *today*.") == ["Great!", "We are open today."]


def test_text_without_punctuation_still_comes_out() -> None:
    assert stream("ok see you then") == ["ok see you then"]
    long = " ".join(["word"] * 40)
    chunks = stream(long)
    assert len(chunks) >= 2 and " ".join(chunks).split() == long.split()


def test_empty_and_punctuation_only_text_yields_nothing() -> None:
    assert stream("") == []
    assert stream(" ... ") == []


def test_a_long_unpunctuated_first_clause_is_cut_before_a_conjunction() -> None:
    clauses = stream("We have openings on Tuesday morning and Thursday afternoon for a cleaning.")
    assert clauses[0] == "We have openings on Tuesday morning"
    assert " ".join(clauses) == (
        "We have openings on Tuesday morning and Thursday afternoon for a cleaning."
    )
