"""The paper's 11 training objectives (SPEC §4) as one sentence-transformers-style loss module."""

from infir.train.losses.instruction_loss import InstructionLoss, pairs_from_batch
from infir.train.losses.objectives import DEFAULT_OBJECTIVE, OBJECTIVES, Objective, parse_objective
from infir.train.losses.terms import objective_loss

__all__ = [
    "DEFAULT_OBJECTIVE",
    "OBJECTIVES",
    "InstructionLoss",
    "Objective",
    "objective_loss",
    "pairs_from_batch",
    "parse_objective",
]
