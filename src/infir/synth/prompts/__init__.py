"""Versioned prompt templates of the synthesis pipeline.

Each version is a folder (``v1/``, ...) holding a ``manifest.json`` (the version string that goes
into journal keys and row provenance, and the template files by name) and one text file per
template with a ``### system`` and a ``### user`` section. ``{{name}}`` marks a variable; plain
braces are left alone, so templates can show the JSON they ask for.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from infir.synth.llm.base import Message

DEFAULT_PROMPT_VERSION = "v1"
_VARIABLE = re.compile(r"\{\{(\w+)\}\}")
_SECTION = re.compile(r"^### (system|user)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplate:
    """One chat prompt: a system and a user message with ``{{variables}}``."""

    name: str
    system: str
    user: str

    @property
    def variables(self) -> set[str]:
        return set(_VARIABLE.findall(self.system)) | set(_VARIABLE.findall(self.user))

    def render(self, **values: str) -> list[Message]:
        """Fill the variables; a missing or unexpected one is a programming error, so it raises."""
        missing = self.variables - values.keys()
        unexpected = values.keys() - self.variables
        if missing or unexpected:
            raise KeyError(
                f"template {self.name!r}: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )

        def fill(text: str) -> str:
            return _VARIABLE.sub(lambda match: values[match.group(1)], text)

        return [
            {"role": "system", "content": fill(self.system)},
            {"role": "user", "content": fill(self.user)},
        ]


@dataclass(frozen=True)
class PromptSet:
    """All templates of one prompt version."""

    version: str
    templates: dict[str, PromptTemplate]

    def __getitem__(self, name: str) -> PromptTemplate:
        return self.templates[name]


def _parse_template(name: str, text: str, source: str) -> PromptTemplate:
    parts = _SECTION.split(text)
    # split() gives [preamble, "system", body, "user", body]
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if set(sections) != {"system", "user"}:
        raise ValueError(f"{source}: expected a '### system' and a '### user' section")
    return PromptTemplate(name, sections["system"], sections["user"])


def load_prompts(version: str | Path = DEFAULT_PROMPT_VERSION) -> PromptSet:
    """Load a prompt version packaged with infir (``"v1"``) or a folder of your own in the same layout.

    Args:
        version: a packaged version name, or a path to a folder with ``manifest.json`` and templates.
            Give your own folder a new version string in its manifest: journal keys include it, so
            edited prompts never reuse replies to the old ones.
    """
    folder = Path(version) if Path(version).is_dir() else resources.files(__name__).joinpath(str(version))
    manifest_file = folder / "manifest.json"
    if not manifest_file.is_file():
        raise FileNotFoundError(f"no prompt version {version!r}: {manifest_file} not found")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    templates = {
        name: _parse_template(name, (folder / file).read_text(encoding="utf-8"), str(folder / file))
        for name, file in manifest["templates"].items()
    }
    return PromptSet(version=manifest["version"], templates=templates)
