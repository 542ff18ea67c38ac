"""The stages of InF-IR synthesis (SPEC §2), one function per stage, in the paper's order.

1. `write_instruction`: I+ that P+ satisfies with Q+.
2. `poison_instruction`: I-, a minimal edit of I+ that P+ no longer satisfies.
3. `poison_query`: Q-, a minimal edit of Q+ that P+ no longer answers (independent of I-).
4. `write_hard_negative`: HN1 for (Q+, I-) and HN2 for (Q-, I+).
5. `validate`: a judge model checks every claim the row makes (`CHECKS`).

Stages talk to a model only through an `Ask` callable, which renders a template, calls the model
(or finds the reply in the journal), parses the reply against a pydantic schema and retries a
malformed reply; stages never see the backend.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from infir.data.records import Pair

STAGES: tuple[str, ...] = (
    "instruction",
    "poison_instruction",
    "poison_query",
    "hard_negative_1",
    "hard_negative_2",
    "validate",
)


# --------------------------------------------------------------------------- reply schemas
class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


def _non_blank(value: str) -> str:
    if not value:
        raise ValueError("must be a non-empty string")
    return value


class InstructionReply(_Reply):
    instruction: str
    _check = field_validator("instruction")(_non_blank)


class QueryReply(_Reply):
    query: str
    _check = field_validator("query")(_non_blank)


class PassageReply(_Reply):
    passage: str
    _check = field_validator("passage")(_non_blank)


class SatisfiesReply(_Reply):
    satisfies: bool
    reason: str = ""


class PlausibleReply(_Reply):
    plausible: bool
    reason: str = ""


class MalformedReply(ValueError):
    """A reply that is not the JSON object the prompt asked for."""


Schema = TypeVar("Schema", bound=BaseModel)
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


_LABEL = re.compile(r"^\s*(?:instruction|query|passage|answer)\s*:\s*", re.IGNORECASE)
_YES_NO = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)


def _lenient(text: str, schema: type[Schema]) -> Schema | None:
    """Read a reply that ignored the JSON format: plain text for a one-text-field schema, the first
    yes/no/true/false for a verdict schema. None when that does not work either."""
    fenced = _FENCE.match(text)
    body = (fenced.group(1) if fenced else text).strip()
    required = [name for name, info in schema.model_fields.items() if info.is_required()]
    if len(required) != 1:
        return None
    (name,) = required
    if schema.model_fields[name].annotation is bool:
        found = _YES_NO.search(body)
        if found is None:
            return None
        return schema.model_validate({name: found.group(1).lower() in {"yes", "true"}, "reason": body[:300]})
    value = _LABEL.sub("", body).strip().strip('"').strip()
    return schema.model_validate({name: value}) if value and "{" not in value else None


def parse_reply(text: str, schema: type[Schema], lenient: bool = False) -> Schema:
    """Parse a model reply into `schema`: strips code fences and any chatter around the JSON object.

    Args:
        text: the reply.
        schema: the pydantic model the JSON object must fit.
        lenient: for small models that ignore the format: when no valid JSON object is found,
            take a plain-text reply as the value of a one-text-field schema, or the first
            yes/no/true/false as a verdict. Off by default: a strong model's chatter would pass.

    Raises:
        MalformedReply: no JSON object, or one that fails the schema (the message says which).
    """
    try:
        return _parse_json_reply(text, schema)
    except MalformedReply:
        if lenient and (parsed := _lenient(text, schema)) is not None:
            return parsed
        raise


def _parse_json_reply(text: str, schema: type[Schema]) -> Schema:
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise MalformedReply(f"no JSON object in reply: {text[:120]!r}")
    try:
        obj = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise MalformedReply(f"invalid JSON ({exc.msg}): {text[:120]!r}") from None
    if not isinstance(obj, dict):
        raise MalformedReply(f"expected a JSON object, got {type(obj).__name__}")
    try:
        return schema.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise MalformedReply(f"field {field!r}: {first['msg']}") from None


class Ask(Protocol):
    """Render `template` with `variables`, get a reply for `stage` and parse it into `schema`."""

    async def __call__(
        self,
        stage: str,
        template: str,
        variables: dict[str, str],
        schema: type[Schema],
        differs_from: str | None = None,
    ) -> Schema: ...


# --------------------------------------------------------------------------- generation stages
async def write_instruction(ask: Ask, pair: Pair) -> str:
    """Stage 1: an instruction I+ such that the passage satisfies (Q+, I+)."""
    reply = await ask(
        "instruction", "instruction", {"query": pair.query, "passage": pair.passage}, InstructionReply
    )
    return reply.instruction


async def poison_instruction(ask: Ask, pair: Pair, instruction: str) -> str:
    """Stage 2: I-, a minimal edit of I+ that the passage no longer satisfies with Q+."""
    variables = {"query": pair.query, "instruction": instruction, "passage": pair.passage}
    reply = await ask(
        "poison_instruction", "poison_instruction", variables, InstructionReply, differs_from=instruction
    )
    return reply.instruction


async def poison_query(ask: Ask, pair: Pair, instruction: str) -> str:
    """Stage 3: Q-, a minimal edit of Q+ that the passage no longer answers with I+ (sees I+, never I-)."""
    variables = {"query": pair.query, "instruction": instruction, "passage": pair.passage}
    reply = await ask("poison_query", "poison_query", variables, QueryReply, differs_from=pair.query)
    return reply.query


async def write_hard_negative(ask: Ask, stage: str, query: str, instruction: str, reference: str) -> str:
    """Stage 4: a passage that satisfies (query, instruction), written close to `reference` (P+).

    `stage` is ``"hard_negative_1"`` (for Q+, I-) or ``"hard_negative_2"`` (for Q-, I+).
    """
    variables = {"query": query, "instruction": instruction, "reference": reference}
    reply = await ask(stage, "hard_negative", variables, PassageReply, differs_from=reference)
    return reply.passage


# --------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class Check:
    """One claim about a row that the judge verifies.

    A "satisfies" check asks whether `passage` satisfies (`query`, `instruction`) (field names of
    the row); a "plausible" check asks whether `edited` is a plausible minimal edit of `original`.
    `expected` is the answer a good row needs.
    """

    name: str
    kind: str
    expected: bool
    fields: tuple[str, ...]
    question: str


CHECKS: tuple[Check, ...] = (
    Check("pos_for_qpos_ipos", "satisfies", True,
          ("query_positive", "instruction_positive", "document_positive"),
          "Does P+ satisfy (Q+, I+)?"),
    Check("pos_for_qpos_ineg", "satisfies", False,
          ("query_positive", "instruction_negative", "document_positive"),
          "Does P+ satisfy (Q+, I-)?"),
    Check("pos_for_qneg_ipos", "satisfies", False,
          ("query_negative", "instruction_positive", "document_positive"),
          "Does P+ satisfy (Q-, I+)?"),
    Check("hn1_for_qpos_ineg", "satisfies", True,
          ("query_positive", "instruction_negative", "hard_negative_document_1"),
          "Does HN1 satisfy (Q+, I-)?"),
    Check("hn1_for_qpos_ipos", "satisfies", False,
          ("query_positive", "instruction_positive", "hard_negative_document_1"),
          "Does HN1 satisfy (Q+, I+)? (it must not, or it is a false negative of P+)"),
    Check("hn2_for_qneg_ipos", "satisfies", True,
          ("query_negative", "instruction_positive", "hard_negative_document_2"),
          "Does HN2 satisfy (Q-, I+)?"),
    Check("ineg_plausible", "plausible", True,
          ("instruction_positive", "instruction_negative"),
          "Is I- a plausible, minimal edit of I+?"),
    Check("qneg_plausible", "plausible", True,
          ("query_positive", "query_negative"),
          "Is Q- a plausible, minimal edit of Q+?"),
)  # fmt: skip


async def _judge(ask: Ask, check: Check, row: dict[str, str]) -> dict:
    if check.kind == "satisfies":
        query, instruction, passage = (row[f] for f in check.fields)
        variables = {"query": query, "instruction": instruction, "passage": passage}
        reply = await ask(f"validate:{check.name}", "judge_satisfies", variables, SatisfiesReply)
        verdict = reply.satisfies
    else:
        original, edited = (row[f] for f in check.fields)
        kind = "query" if check.fields[0] == "query_positive" else "instruction"
        variables = {"kind": kind, "original": original, "edited": edited}
        reply = await ask(f"validate:{check.name}", "judge_plausible", variables, PlausibleReply)
        verdict = reply.plausible
    return {"verdict": verdict, "expected": check.expected, "passed": verdict == check.expected,
            "reason": reply.reason}  # fmt: skip


async def validate(ask: Ask, row: dict[str, str]) -> dict[str, dict]:
    """Stage 5: the judge's verdict on every check in `CHECKS`, keyed by check name.

    Checks are independent, so they run concurrently; each verdict holds the judge's answer,
    the answer a good row needs, whether they agree (`passed`) and the judge's reason.
    An exception of any check is raised after all checks have finished, the first in `CHECKS`
    order, so the outcome never depends on timing.
    """
    results = await asyncio.gather(*(_judge(ask, check, row) for check in CHECKS), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return {check.name: result for check, result in zip(CHECKS, results, strict=True)}
