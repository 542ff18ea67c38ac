import json
import shutil
from pathlib import Path

import pytest

from infir.data import InputError
from infir.data.followir import Benchmark, headline_for, load_benchmark, read_followir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MINI = FIXTURES / "followir_mini"
HUB_MINI = FIXTURES / "followir_hub_mini"


@pytest.fixture
def mini(tmp_path) -> Path:
    """A writable copy of the FollowIR-layout fixture, for the bad-input cases."""
    return Path(shutil.copytree(MINI, tmp_path / "mini"))


def _rewrite_jsonl(path: Path, edit) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(row) + "\n" for row in edit(rows)))


def test_reads_followir_layout():
    bench = read_followir(MINI)
    assert isinstance(bench, Benchmark) and bench.follows_instructions
    assert len(bench.corpus) == 30 and bench.query_ids == ["q1", "q2", "q3", "q4", "q5", "q6"]
    assert bench.instructions_changed["q1"].endswith("Documents about recycling are not relevant.")
    assert bench.qrels_og["q1"]["d02"] == 1 and bench.qrels_changed["q1"]["d02"] == 0
    assert bench.top_ranked["q1"] == ["d01", "d02", "d03", "d04", "d05", "d06"]
    assert bench.headline == "nDCG@10" and bench.warnings == []


def test_hub_layout_folder_matches_local_layout():
    """The hub's exact layout (configs, splits, qid/pid top_ranked rows, float scores) via datasets."""
    hub = load_benchmark(HUB_MINI)
    local = read_followir(MINI)
    assert hub.name == "followir_hub_mini"
    assert hub.corpus == local.corpus and hub.queries == local.queries
    assert hub.instructions_og == local.instructions_og
    assert hub.instructions_changed == local.instructions_changed
    assert hub.qrels_og == local.qrels_og and hub.qrels_changed == local.qrels_changed
    assert hub.top_ranked == local.top_ranked


def test_beir_folder_is_a_standard_benchmark(shared_data):
    bench = load_benchmark(shared_data / "scifact")
    assert not bench.follows_instructions and bench.qrels_changed is None
    assert len(bench.queries) == 300 and len(bench.corpus) == 5183
    assert bench.headline == "nDCG@10" and bench.warnings == []


def test_headline_per_followir_set(tmp_path):
    assert headline_for("robust04") == "MAP@1000"
    assert headline_for("core17") == "MAP@1000"
    assert headline_for("news21") == "nDCG@5"
    assert headline_for("scifact") == "nDCG@10"
    copy = shutil.copytree(MINI, tmp_path / "news21-local")
    assert load_benchmark(copy).headline == "nDCG@5"
    assert load_benchmark(copy, headline="R@100").headline == "R@100"


def test_missing_qrels_file_is_an_error(mini):
    (mini / "qrels" / "changed.tsv").unlink()
    with pytest.raises(InputError, match=r"changed.tsv: qrels file not found"):
        load_benchmark(mini)


def test_query_without_changed_instruction_names_line_and_field(mini):
    _rewrite_jsonl(
        mini / "queries.jsonl",
        lambda rows: [rows[0], {k: v for k, v in rows[1].items() if k != "instruction_changed"}, *rows[2:]],
    )
    with pytest.raises(InputError, match=r"queries.jsonl, line 2, field 'instruction_changed': missing"):
        load_benchmark(mini)


def test_hub_row_without_changed_instruction_is_an_error(tmp_path):
    hub = Path(shutil.copytree(HUB_MINI, tmp_path / "hub"))
    _rewrite_jsonl(
        hub / "queries.jsonl", lambda rows: [rows[0], {**rows[1], "instruction_changed": ""}, *rows[2:]]
    )
    with pytest.raises(InputError, match=r"\[queries\], line 2, field 'instruction_changed': empty"):
        load_benchmark(hub)


def test_judged_documents_missing_from_corpus_are_counted(mini):
    _rewrite_jsonl(mini / "corpus.jsonl", lambda rows: [r for r in rows if r["_id"] not in {"d01", "d03"}])
    _rewrite_jsonl(mini / "top_ranked.jsonl", lambda rows: rows)
    bench = load_benchmark(mini)
    missing = [w for w in bench.warnings if "not in the corpus" in w]
    assert any(w.startswith("2 judged (og) document id(s)") for w in missing)
    assert any(w.startswith("2 candidate document(s)") for w in missing)
    assert "d01" not in bench.top_ranked["q1"]


def test_no_judged_document_in_corpus_is_an_error(mini):
    qrels = mini / "qrels" / "og.tsv"
    qrels.write_text(qrels.read_text().replace("\td", "\tX"))
    with pytest.raises(InputError, match="no relevant \\(og\\) document is in the corpus"):
        load_benchmark(mini)


def test_unjudged_queries_are_dropped_with_a_count(mini):
    lines = (mini / "qrels" / "og.tsv").read_text().splitlines()
    (mini / "qrels" / "og.tsv").write_text(
        "\n".join(line for line in lines if not line.startswith("q6")) + "\n"
    )
    bench = load_benchmark(mini)
    assert "q6" not in bench.queries and "q6" not in bench.instructions_changed
    assert any(w.startswith("1 quer(y/ies) without og judgments") for w in bench.warnings)


def test_identical_qrels_leave_p_mrr_undefined(mini):
    shutil.copy(mini / "qrels" / "og.tsv", mini / "qrels" / "changed.tsv")
    with pytest.raises(InputError, match="p-MRR is undefined"):
        load_benchmark(mini)


def test_query_without_candidates_is_an_error(mini):
    _rewrite_jsonl(mini / "top_ranked.jsonl", lambda rows: rows[:-1])
    with pytest.raises(InputError, match="1 quer\\(y/ies\\) have no candidates: 'q6'"):
        load_benchmark(mini)


def test_unknown_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="benchmark folder not found"):
        load_benchmark(tmp_path / "nope")
    with pytest.raises(InputError, match="benchmark folder not found"):
        load_benchmark("scifact")  # a bare word is a folder name, never sent to the hub
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a benchmark folder"):
        load_benchmark(tmp_path / "empty")


def test_hub_names_go_to_the_pinned_followir_repositories():
    # Offline in tests: the loader must reach for the right repository and say why it failed.
    with pytest.raises(InputError, match=r"jhu-clsp/robust04-instructions.*could not load config 'corpus'"):
        load_benchmark("robust04")
