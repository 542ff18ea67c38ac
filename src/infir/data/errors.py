"""One error type for bad input, always naming where the problem is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class InputError(ValueError):
    """Bad input: names the file, the 1-based line (or row) and the field."""

    path: str | Path
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f", line {self.line}"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}"


@dataclass
class SkippedRows:
    """What `skip_invalid=True` left out, for a report instead of a crash."""

    errors: list[InputError]

    @property
    def count(self) -> int:
        return len(self.errors)
