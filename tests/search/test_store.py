from infir.data.beir import Document
from infir.search.store import DocumentStore, write_document_store


def test_rows_round_trip_beyond_one_sqlite_statement(tmp_path):
    documents = [Document(f"d{i}", f"title {i}" if i % 2 else "", f"text {i}") for i in range(2500)]
    path = write_document_store(tmp_path / "docs.sqlite", documents)
    assert [p.name for p in tmp_path.iterdir()] == ["docs.sqlite"]  # no temp file left behind
    store = DocumentStore(path)
    try:
        assert len(store) == 2500
        found = store.get_rows([2499, 0, 0, *range(1000, 2200), 7000])
        assert found[0] == documents[0] and found[2499] == documents[2499] and found[1500] == documents[1500]
        assert len(found) == 1 + 1 + 1200 and 7000 not in found
        assert store.get_rows([]) == {}
    finally:
        store.close()
