"""Records and I/O: the floor every capability stands on."""

from infir.data.errors import InputError, SkippedRows
from infir.data.io import (
    atomic_path,
    iter_jsonl,
    load_records,
    read_jsonl_models,
    write_json_atomic,
    write_jsonl_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from infir.data.records import INF_FIELDS, InfRecord, Pair
from infir.data.text import TEXT_FORMATS, query_text

__all__ = [
    "INF_FIELDS",
    "TEXT_FORMATS",
    "InfRecord",
    "InputError",
    "Pair",
    "SkippedRows",
    "atomic_path",
    "iter_jsonl",
    "load_records",
    "query_text",
    "read_jsonl_models",
    "write_json_atomic",
    "write_jsonl_atomic",
    "write_parquet_atomic",
    "write_text_atomic",
]
