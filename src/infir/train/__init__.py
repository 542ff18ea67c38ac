"""InF-Embed training: the paper's objectives on InF-IR rows, over sentence-transformers' trainer."""

from infir.train.config import TrainConfig
from infir.train.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
