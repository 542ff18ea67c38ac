"""The paper's 11 training objectives, named and parsed (SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ObjectiveMode = Literal["uni", "multi"]
TERMS: tuple[str, ...] = ("P", "IQ", "I")

OBJECTIVES: tuple[str, ...] = (
    "uni:P",
    "uni:IQ",
    "uni:I",
    "uni:P,IQ",
    "uni:P,I",
    "uni:I,IQ",
    "uni:P,I,IQ",
    "multi:P,IQ",
    "multi:P,I",
    "multi:I,IQ",
    "multi:P,I,IQ",
)
DEFAULT_OBJECTIVE = "multi:P,I"

# The canonical names list the terms in the paper's order for each objective (e.g. "I,IQ", "P,I,IQ").
_CANONICAL_BY_KEY: dict[tuple[str, frozenset[str]], str] = {}
for _name in OBJECTIVES:
    _mode, _terms = _name.split(":")
    _CANONICAL_BY_KEY[(_mode, frozenset(_terms.split(",")))] = _name


@dataclass(frozen=True)
class Objective:
    """A training objective: which base terms (l_P, l_IQ, l_I) and how they are combined.

    ``uni`` puts the candidates of all named terms in ONE softmax around the positive pair score;
    ``multi`` sums the separately normalised terms. Build one with :func:`parse_objective`.
    """

    mode: ObjectiveMode
    terms: frozenset[str]

    def __post_init__(self) -> None:
        if (self.mode, self.terms) not in _CANONICAL_BY_KEY:
            given = f"{self.mode}:{','.join(sorted(self.terms))}"
            raise ValueError(f"no objective {given}; expected one of {', '.join(OBJECTIVES)}")

    @property
    def name(self) -> str:
        """The canonical name, e.g. ``"multi:P,I"``."""
        return _CANONICAL_BY_KEY[(self.mode, self.terms)]

    def __str__(self) -> str:
        return self.name


def parse_objective(name: str | Objective) -> Objective:
    """Parse an objective name; spaces, case of the mode and the order of the terms do not matter.

    >>> parse_objective("multi: I, P").name
    'multi:P,I'
    """
    if isinstance(name, Objective):
        return name
    mode, sep, terms_text = str(name).replace(" ", "").partition(":")
    terms = frozenset(term.upper() for term in terms_text.split(",") if term)
    key = (mode.lower(), terms)
    if not sep or key not in _CANONICAL_BY_KEY:
        raise ValueError(f"unknown objective {name!r}; expected one of {', '.join(OBJECTIVES)}")
    return Objective(mode=key[0], terms=key[1])
