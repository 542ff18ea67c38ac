"""Typed records that flow between the capabilities (SPEC §1)."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

INF_FIELDS: tuple[str, ...] = (
    "query_positive",
    "instruction_positive",
    "document_positive",
    "instruction_negative",
    "query_negative",
    "hard_negative_document_1",
    "hard_negative_document_2",
)


class InfRecord(BaseModel):
    """One InF-IR source row: (Q+, I+, P+) plus its poisoned instruction/query and hard negatives.

    `document` is accepted as an alias of `document_positive` (the authors' loader reads it).
    Fields beyond the schema (provenance, verdicts, ids) are kept in `extra`.
    """

    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=True)

    query_positive: str
    instruction_positive: str
    document_positive: str = Field(validation_alias=AliasChoices("document_positive", "document"))
    instruction_negative: str
    query_negative: str
    hard_negative_document_1: str
    hard_negative_document_2: str

    @field_validator(*INF_FIELDS)
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a non-empty string")
        return value

    @property
    def extra(self) -> dict:
        return dict(self.__pydantic_extra__ or {})

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


class Pair(BaseModel):
    """A source (query, positive passage) pair, the input of synthesis."""

    model_config = ConfigDict(frozen=True)

    query: str
    passage: str
    query_id: str | None = None
    passage_id: str | None = None

    @field_validator("query", "passage")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a non-empty string")
        return value
