"""The one place where a query and an instruction become query-side text (SPEC §3).

Training, evaluation and search all call `query_text`, so they can never disagree.
"""

from __future__ import annotations

from typing import Literal

TextFormat = Literal["concat", "reversed"]
TEXT_FORMATS: tuple[str, ...] = ("concat", "reversed")


def query_text(query: str, instruction: str | None = None, text_format: TextFormat = "concat") -> str:
    """Join query and instruction.

    concat (the paper's, FollowIR's and MTEB's default): ``f"{query} {instruction}".strip()``;
    reversed: ``"Instruct: {instruction}\\nQuery: {query}"``. No instruction -> the bare query.
    """
    instruction = (instruction or "").strip()
    if text_format == "concat":
        return f"{query} {instruction}".strip()
    if text_format == "reversed":
        return f"Instruct: {instruction}\nQuery: {query}" if instruction else query.strip()
    raise ValueError(f"unknown text format {text_format!r}; expected one of {TEXT_FORMATS}")
