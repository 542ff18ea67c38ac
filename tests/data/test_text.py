import pytest

from infir.data.text import query_text


def test_concat_is_the_paper_format():
    assert query_text("what is rust", "Only documents about the language.") == (
        "what is rust Only documents about the language."
    )
    assert query_text("what is rust", "") == "what is rust"
    assert query_text("what is rust", None) == "what is rust"


def test_reversed_format():
    assert query_text("q", "do x", "reversed") == "Instruct: do x\nQuery: q"
    assert query_text("q", "", "reversed") == "q"


def test_unknown_format_is_an_error():
    with pytest.raises(ValueError, match="unknown text format"):
        query_text("q", "i", "sideways")  # type: ignore[arg-type]
