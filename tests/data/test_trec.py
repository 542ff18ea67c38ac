import pytest

from infir.data import InputError
from infir.data.beir import read_qrels
from infir.data.trec import ranked, read_run, write_run, write_trec_qrels


def test_run_round_trip_ranks_by_score_then_doc_id_descending(tmp_path):
    run = {"q2": {"a": 0.5, "b": 0.9}, "q1": {"x": 1.0, "z": 1.0, "y": 2.0}}
    path = write_run(tmp_path / "runs" / "m.trec", run, tag="mini")
    lines = path.read_text().splitlines()
    # ties (x, z at 1.0) order by doc id descending, the p-MRR rule
    assert lines[:3] == ["q1 Q0 y 1 2.000000 mini", "q1 Q0 z 2 1.000000 mini", "q1 Q0 x 3 1.000000 mini"]
    assert lines[3:] == ["q2 Q0 b 1 0.900000 mini", "q2 Q0 a 2 0.500000 mini"]
    assert read_run(path) == run
    assert [p.name for p in path.parent.iterdir()] == ["m.trec"]  # no temp file left behind


def test_run_depth_keeps_top_documents(tmp_path):
    path = write_run(tmp_path / "m.trec", {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}, depth=2)
    assert read_run(path) == {"q": {"a": 3.0, "b": 2.0}}
    assert ranked({"a": 1.0, "b": 1.0}) == [("b", 1.0), ("a", 1.0)]


def test_ids_with_whitespace_are_refused(tmp_path):
    with pytest.raises(ValueError, match="whitespace"):
        write_run(tmp_path / "m.trec", {"q 1": {"a": 1.0}})
    assert not (tmp_path / "m.trec").exists()


def test_qrels_round_trip(tmp_path):
    qrels = {"301": {"FBIS3-1": 2, "FBIS3-2": 0}, "302": {"LA0101": 1}}
    path = write_trec_qrels(tmp_path / "qrels.txt", qrels)
    assert path.read_text().splitlines()[0] == "301 0 FBIS3-1 2"
    assert read_qrels(path) == qrels


def test_bad_lines_name_file_line_and_field(tmp_path):
    bad_run = tmp_path / "bad.trec"
    bad_run.write_text("q Q0 d 1 0.5 tag\nq Q0 e 2 high tag\n")
    with pytest.raises(InputError, match=r"bad.trec, line 2, field 'score': not a number"):
        read_run(bad_run)
    short = tmp_path / "short.trec"
    short.write_text("q Q0 d 1\n")
    with pytest.raises(InputError, match="line 1: expected 6 columns"):
        read_run(short)
    bad_qrels = tmp_path / "qrels.txt"
    bad_qrels.write_text("q 0 d yes\n")
    with pytest.raises(InputError, match="field 'score'"):
        read_qrels(bad_qrels)
    with pytest.raises(InputError, match="not found"):
        read_qrels(tmp_path / "missing.txt")
