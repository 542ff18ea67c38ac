"""Readers and atomic writers for JSONL, Parquet and Hugging Face datasets.

Every reader names the file, line and field of bad input; `skip_invalid=True` collects those
errors instead of raising, so a long job can report them and go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from infir.data.errors import InputError, SkippedRows
from infir.data.records import InfRecord

Model = TypeVar("Model", bound=BaseModel)

INF_IR_HUB_NAME = "InF-IR/InF-IR"


# --------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temp file beside `path`; rename it over `path` only if the block succeeds.

    A crash mid-write leaves the old file (or none) in place, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as handle:
        handle.write(text)
    return Path(path)


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _jsonable(row: Any) -> Any:
    if isinstance(row, InfRecord):
        return row.to_dict()
    if isinstance(row, BaseModel):
        return row.model_dump(mode="json")
    return row


def write_jsonl_atomic(path: str | Path, rows: Iterable[Any]) -> Path:
    """Write rows (dicts or pydantic models) as JSON lines, atomically."""
    with atomic_path(path) as handle:
        for row in rows:
            handle.write(json.dumps(_jsonable(row), ensure_ascii=False) + "\n")
    return Path(path)


def write_parquet_atomic(path: str | Path, rows: Iterable[Any]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([_jsonable(r) for r in rows])
    with atomic_path(path, mode="wb") as handle:
        pq.write_table(table, handle)
    return Path(path)


# --------------------------------------------------------------------------- reading
def _parse_line(path: Path, line_no: int, raw: bytes) -> dict | None:
    """One JSONL line -> object (None for a blank line); InputError on anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1]
        raise InputError(path, line_no, None, f"not valid UTF-8 (byte {exc.start}: {bad!r})") from None
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, line_no, None, f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise InputError(path, line_no, None, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def iter_jsonl(path: str | Path, skipped: SkippedRows | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) per non-blank line.

    A bad line raises InputError, or is recorded in `skipped` and passed over when one is given.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, None, "file not found")
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                obj = _parse_line(path, line_no, raw)
            except InputError as error:
                if skipped is None:
                    raise
                skipped.errors.append(error)
                continue
            if obj is not None:
                yield line_no, obj


def validate_rows(
    rows: Iterable[tuple[int, dict]],
    model: type[Model],
    source: str | Path,
    skip_invalid: bool = False,
) -> tuple[list[Model], SkippedRows]:
    """Validate (line, dict) rows into `model`; the first bad field raises unless skipping."""
    good: list[Model] = []
    skipped = SkippedRows([])
    for line_no, obj in rows:
        try:
            good.append(model.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            message = "missing" if first["type"] == "missing" else first["msg"]
            error = InputError(source, line_no, field, message)
            if not skip_invalid:
                raise error from None
            skipped.errors.append(error)
    return good, skipped


def read_jsonl_models(
    path: str | Path, model: type[Model], skip_invalid: bool = False
) -> tuple[list[Model], SkippedRows]:
    """Read a JSONL file into validated models, with the error policy of `validate_rows`."""
    skipped = SkippedRows([])
    lines = iter_jsonl(path, skipped if skip_invalid else None)
    good, bad = validate_rows(lines, model, path, skip_invalid)
    skipped.errors = sorted(skipped.errors + bad.errors, key=lambda e: e.line or 0)
    return good, skipped


def _iter_table_rows(rows: Iterable[dict]) -> Iterator[tuple[int, dict]]:
    # Tables have rows, not lines: report 1-based row numbers in the same slot.
    yield from enumerate(rows, start=1)


def load_records(
    source: str | Path,
    *,
    split: str = "msmarco",
    skip_invalid: bool = False,
) -> tuple[list[InfRecord], SkippedRows]:
    """Load InF-IR rows from a JSONL file, a Parquet file, a local dataset folder, or a hub name.

    A hub name (e.g. ``InF-IR/InF-IR``) goes through ``datasets.load_dataset(name, split=split)``
    and needs internet; a local folder in the hub's layout is read the same way offline.
    """
    path = Path(source)
    if path.suffix in {".jsonl", ".json"}:
        return read_jsonl_models(path, InfRecord, skip_invalid)
    if path.suffix == ".parquet":
        if not path.exists():
            raise InputError(path, None, None, "file not found")
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        return validate_rows(_iter_table_rows(rows), InfRecord, path, skip_invalid)
    if path.suffix and not path.exists():
        raise InputError(path, None, None, "file not found")
    import datasets

    try:
        dataset = datasets.load_dataset(str(source), split=split)
    except Exception as exc:  # datasets raises many types; the user needs the source and the cause
        raise InputError(source, None, None, f"could not load dataset (split '{split}'): {exc}") from exc
    return validate_rows(_iter_table_rows(dataset), InfRecord, f"{source}[{split}]", skip_invalid)
