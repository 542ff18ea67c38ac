import json
from pathlib import Path

import pytest

from infir.data import InfRecord, InputError, load_records, write_jsonl_atomic, write_parquet_atomic
from infir.data.io import atomic_path

ROW = {
    "query_positive": "how long to become an lpn",
    "instruction_positive": "Compare with degree programs.",
    "document_positive": "It takes 1 to 2 years to become an LPN; an associate degree takes 2 to 3.",
    "instruction_negative": "Compare with tuition costs.",
    "query_negative": "how long to become a cna",
    "hard_negative_document_1": "LPN programs cost $10k; degrees cost more.",
    "hard_negative_document_2": "CNA training takes 4 to 12 weeks, far shorter than a degree.",
}


def test_document_alias_and_extra_fields_kept():
    row = dict(ROW)
    row["document"] = row.pop("document_positive")
    row["source_query_id"] = "q1"
    record = InfRecord.model_validate(row)
    assert record.document_positive == ROW["document_positive"]
    assert record.extra == {"source_query_id": "q1"}
    assert record.to_dict()["document_positive"] == ROW["document_positive"]


def _write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_jsonl_round_trip(tmp_path):
    path = write_jsonl_atomic(tmp_path / "rows.jsonl", [InfRecord.model_validate(ROW)] * 3)
    records, skipped = load_records(path)
    assert len(records) == 3 and skipped.count == 0
    assert records[0] == InfRecord.model_validate(ROW)


def test_parquet_round_trip(tmp_path):
    path = write_parquet_atomic(tmp_path / "rows.parquet", [ROW, ROW])
    records, _ = load_records(path)
    assert [r.query_positive for r in records] == [ROW["query_positive"]] * 2


@pytest.mark.parametrize(
    ("bad_line", "line", "field", "fragment"),
    [
        (b'{"query_positive": ', 2, None, "malformed JSON"),
        (json.dumps({**ROW, "query_negative": "  "}).encode(), 2, "query_negative", "non-empty"),
        (
            json.dumps({k: v for k, v in ROW.items() if k != "hard_negative_document_2"}).encode(),
            2,
            "hard_negative_document_2",
            "missing",
        ),
        (b'{"query_positive": "caf\xe9"}', 2, None, "UTF-8"),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path, bad_line, line, field, fragment):
    good = json.dumps(ROW).encode()
    path = _write_lines(tmp_path / "bad.jsonl", [good, bad_line, good])
    with pytest.raises(InputError) as info:
        load_records(path)
    error = info.value
    assert (Path(error.path), error.line, error.field) == (path, line, field)
    assert fragment in str(error) and "bad.jsonl, line 2" in str(error)

    records, skipped = load_records(path, skip_invalid=True)
    assert len(records) == 2 and skipped.count == 1 and skipped.errors[0].line == 2


def test_local_dataset_folder_in_hub_layout(tmp_path):
    # The hub's InF-IR/InF-IR stores split files named <split>-NNNNN-of-NNNNN.parquet.
    write_parquet_atomic(tmp_path / "data" / "msmarco-00000-of-00001.parquet", [ROW, ROW, ROW])
    records, _ = load_records(tmp_path, split="msmarco")
    assert len(records) == 3


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as handle:
        handle.write("partial")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [target]
