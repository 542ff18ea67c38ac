"""The small data sets shipped inside infir, for `make demo`, `infir demo` and the tests.

All three were written by hand by the infir authors for this package (no text is copied from
MS MARCO, FollowIR or any other corpus) and are released under the project's license,
Apache-2.0. They are tiny on purpose: enough to show every capability run end to end on two CPU
cores in minutes, far too small to measure anything about a model. Topics of the three sets are
disjoint, so the demo benchmark stays held out from everything the demo trains on.

The paths resolve through `importlib.resources`, so they work from an installed wheel and from
an editable checkout alike.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _demo_path(*parts: str) -> Path:
    # The package is installed as plain files (no zip import), so the resource is a real path.
    return Path(str(files("infir.data").joinpath("demo", *parts)))


def demo_train_path() -> Path:
    """The demo training set: 40 hand-written rows in the InF-IR schema (SPEC §1), JSON lines.

    Each row has Q+, I+, P+, a minimally edited instruction I- and query Q- that P+ no longer
    satisfies, HN1 (answers Q+ under I-) and HN2 (answers Q- under I+), plus an ``id`` field
    (``demo-001`` ...). Topics are varied (health, law, cooking, programming, travel, finance,
    history, science, sports, consumer products, ...). Read it with `infir.data.load_records`.
    """
    return _demo_path("train.jsonl")


def demo_pairs_path() -> Path:
    """The demo synthesis input: 12 hand-written (query, passage) source pairs, JSON lines.

    Rows are ``{"query_id", "passage_id", "query", "passage"}``: an MS MARCO-like query and a
    short passage that answers it, the input `infir synth` turns into InF-IR rows. Topics are
    disjoint from the demo training set and the demo benchmark.
    """
    return _demo_path("pairs.jsonl")


def demo_benchmark_path() -> Path:
    """The demo instruction-following benchmark: a folder in the FollowIR layout (SPEC §6).

    ``corpus.jsonl`` (80 passages), ``queries.jsonl`` (16 queries, each with ``instruction_og``
    and a narrower ``instruction_changed``), ``qrels/og.tsv`` and ``qrels/changed.tsv``. Every
    query has five candidate passages: at least two relevant under the original instruction, at
    least one of which the changed instruction makes non-relevant (what p-MRR measures), plus
    on-topic distractors relevant under neither. Read it with `infir.data.followir.read_followir`.
    """
    return _demo_path("benchmark")
