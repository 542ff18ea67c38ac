import json

import pytest

from infir.data.errors import InputError
from infir.search.corpus import corpus_fingerprint, read_search_corpus
from tests.search.conftest import SEARCH_CORPUS


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_beir_file_and_folder_read_alike(tmp_path):
    folder = tmp_path / "beir"
    folder.mkdir()
    (folder / "corpus.jsonl").write_bytes(SEARCH_CORPUS.read_bytes())
    from_file = read_search_corpus(SEARCH_CORPUS)
    assert read_search_corpus(folder) == from_file
    assert (
        len(from_file) == 12 and from_file[0].doc_id == "snake-ball" and from_file[0].title == "Ball python"
    )


def test_plain_jsonl_with_id_and_optional_title(tmp_path):
    docs = read_search_corpus(
        _write(tmp_path / "c.jsonl", [{"id": "a", "text": "x"}, {"id": 7, "title": "T", "text": "y"}])
    )
    assert [(d.doc_id, d.title, d.text) for d in docs] == [("a", "", "x"), ("7", "T", "y")]


@pytest.mark.parametrize(
    ("rows", "line", "field"),
    [
        ([{"id": "a", "text": "x"}, {"text": "y"}], 2, "id"),
        ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], 2, "id"),
        ([{"id": "a", "text": "x"}, {"id": "b"}], 2, "text"),
        ([{"id": "a", "text": "x", "title": 3}], 1, "title"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path, rows, line, field):
    path = _write(tmp_path / "c.jsonl", rows)
    with pytest.raises(InputError) as info:
        read_search_corpus(path)
    assert (info.value.line, info.value.field) == (line, field)
    assert str(path) in str(info.value)


def test_folder_without_corpus_and_empty_file(tmp_path):
    with pytest.raises(InputError, match="corpus.jsonl"):
        read_search_corpus(tmp_path)
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="no documents"):
        read_search_corpus(tmp_path / "empty.jsonl")


def test_fingerprint_sees_any_change():
    docs = read_search_corpus(SEARCH_CORPUS)
    changed = [*docs[:-1], docs[-1].__class__(docs[-1].doc_id, docs[-1].title, docs[-1].text + ".")]
    assert corpus_fingerprint(docs) == corpus_fingerprint(list(docs))
    assert corpus_fingerprint(docs) != corpus_fingerprint(changed)
    assert corpus_fingerprint(docs) != corpus_fingerprint(docs[::-1])
