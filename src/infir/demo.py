"""The main job end to end on the embedded defaults: synth -> train -> evaluate -> search.

`make demo` / `infir demo` run it offline in minutes on 2 CPU cores:

1. synth: the shipped (query, passage) pairs become InF-IR rows with the embedded SmolLM2, or
   with the OpenAI-compatible server named by ``INFIR_LLM_BASE_URL`` + ``INFIR_LLM_MODEL``;
2. train: the packaged MiniLM with ``multi:P,I`` on the shipped demo rows plus what synthesis kept;
3. evaluate: base vs trained vs BM25 on the shipped FollowIR-layout benchmark (table, JSON, plot);
4. search: an index of the benchmark corpus and one query under two different instructions.

Every step writes under ``out_dir`` and a second run reuses what is done (the synthesis journal,
the trained model when its settings match, cached corpus embeddings, the finished index).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from infir.data import InfRecord, load_records, write_json_atomic
from infir.data.demo import demo_benchmark_path, demo_pairs_path, demo_train_path
from infir.data.followir import Benchmark, load_benchmark

# The embedded 135M model writes ~30-token replies at a few tokens/s on 2 cores; caps keep the
# demo within minutes (a real server gets the pipeline's own, larger defaults).
LOCAL_MAX_TOKENS = {
    "instruction": 48,
    "poison_instruction": 48,
    "poison_query": 24,
    "hard_negative": 96,
    "judge_satisfies": 24,
    "judge_plausible": 24,
}


# The folder name is the model's label in the evaluation table.
TRAINED_MODEL_DIR = "infembed-minilm"


@dataclass
class DemoConfig:
    """Sizes of the demo; the defaults run in minutes on 2 cores, the reduced ones in tests."""

    out_dir: Path = Path("demo-output")
    synth_pairs: int = 2
    train_steps: int = 40
    batch_size: int = 4
    seed: int = 0
    llm: str | None = None  # None: "openai" when INFIR_LLM_BASE_URL and INFIR_LLM_MODEL are set, else "local"
    llm_model: str | None = None
    llm_base_url: str | None = None
    show_progress: bool = True


@dataclass
class DemoResult:
    synth_kept: int
    synth_rejected: int
    train_rows: int
    model_path: Path
    eval_json: Path
    plot: Path
    index_dir: Path
    scores: dict[str, dict[str, float | None]]
    search_example: dict = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    table: object = field(default=None, repr=False)  # the rich Table of the evaluation, for the CLI


def _llm_settings(config: DemoConfig) -> tuple[str, str | None, str | None]:
    base_url = config.llm_base_url or os.environ.get("INFIR_LLM_BASE_URL")
    model = config.llm_model or os.environ.get("INFIR_LLM_MODEL")
    llm = config.llm or ("openai" if base_url and model else "local")
    return llm, model, base_url


def run_synth(config: DemoConfig, say: Callable[[str], None]) -> tuple[list[InfRecord], dict]:
    from infir.synth.pipeline import default_paths, synthesize_files

    llm, model, base_url = _llm_settings(config)
    folder = config.out_dir / "synth" / (llm if llm == "local" else f"{llm}-{model}".replace("/", "_"))
    out = folder / "rows.jsonl"
    say(
        f"synth: {config.synth_pairs} pairs from {demo_pairs_path().name} with the {llm} LLM"
        + (f" {model} at {base_url}" if llm == "openai" else " (embedded SmolLM2-135M-Instruct)")
    )
    local = llm == "local"
    stats = synthesize_files(
        demo_pairs_path(),
        out,
        llm=llm,
        model=model,
        base_url=base_url,
        concurrency=1 if local else 8,
        limit=config.synth_pairs,
        seed=config.seed,
        resume=default_paths(out)["journal"].exists(),
        lenient_replies=local,
        max_parse_retries=0 if local else 2,
        max_tokens=LOCAL_MAX_TOKENS if local else None,
        show_progress=config.show_progress,
    )
    kept, _ = load_records(out) if out.exists() else ([], None)
    summary = {
        "kept": stats.kept,
        "rejected": stats.rejected,
        "pairs": stats.pairs,
        "rejection_reasons": stats.rejection_reasons,
        "rows": str(out),
    }
    say(f"synth: kept {stats.kept} of {stats.kept + stats.rejected} rows after LLM validation -> {out}")
    if stats.rejection_reasons:
        say(f"synth: rejection reasons {stats.rejection_reasons}")
    return kept, summary


def run_train(
    config: DemoConfig, extra_rows: list[InfRecord], say: Callable[[str], None]
) -> tuple[Path, int]:
    from infir.train import TrainConfig, train

    shipped, _ = load_records(demo_train_path())
    records = shipped + extra_rows
    out = config.out_dir / TRAINED_MODEL_DIR
    settings = {
        "rows": [r.to_dict() for r in records],
        "steps": config.train_steps,
        "batch_size": config.batch_size,
        "seed": config.seed,
    }
    marker = out / "demo_settings.json"
    if marker.exists() and json.loads(marker.read_text(encoding="utf-8")) == settings:
        say(f"train: reusing {out} (same rows and settings)")
        return out, len(records)
    say(
        f"train: MiniLM with multi:P,I on {len(shipped)} shipped + {len(extra_rows)} synthesized rows, "
        f"{config.train_steps} steps of {config.batch_size} rows"
    )
    train_config = TrainConfig(
        max_steps=config.train_steps,
        batch_size=config.batch_size,
        seed=config.seed,
        logging_steps=1,
        save_total_limit=1,
    )
    result = train(records, train_config, out)
    write_json_atomic(marker, settings)
    say(f"train: loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f} in {result.seconds:.0f} s -> {out}")
    return out, len(records)


def run_eval(config: DemoConfig, benchmark: Benchmark, model_path: Path, say: Callable[[str], None]):
    from infir.evaluate import evaluate, render_table, write_outputs

    folder = config.out_dir / "eval"
    say(
        f"eval: base vs trained vs BM25 on the shipped benchmark ({len(benchmark.queries)} queries, "
        f"{len(benchmark.corpus)} documents)"
    )
    report = evaluate(
        ["default", str(model_path), "bm25"],
        [benchmark],
        cache_dir=config.out_dir / "cache",
        show_progress=config.show_progress,
    )
    json_path, plot_path = folder / "results.json", folder / "p_mrr.png"
    write_outputs(report, json_path=json_path, plot_path=plot_path)
    return report, render_table(report), json_path, plot_path


def run_search(
    config: DemoConfig, benchmark: Benchmark, model_path: Path, say: Callable[[str], None]
) -> tuple[Path, dict]:
    from infir.search import Index, build_index

    index_dir = config.out_dir / "index"
    # An index made with an earlier training of the model folder would be refused by Index.open
    # (model probe mismatch): rebuild it whenever the model is newer than the index.
    manifest = index_dir / "manifest.json"
    if not manifest.exists() or manifest.stat().st_mtime < (model_path / "infir_config.json").stat().st_mtime:
        build_index(
            model_path,
            demo_benchmark_path() / "corpus.jsonl",
            index_dir,
            overwrite=True,
            show_progress=config.show_progress,
        )
    qid = next(iter(benchmark.queries))
    query = benchmark.queries[qid]
    example = {"query": query, "results": {}}
    with Index.open(index_dir) as index:
        for which, instruction in (
            ("og", benchmark.instructions_og[qid]),
            ("changed", benchmark.instructions_changed[qid]),
        ):
            hits = index.search(query, instruction=instruction, k=3)
            example["results"][which] = {
                "instruction": instruction,
                "hits": [
                    {
                        "id": h.id,
                        "score": round(h.score, 4),
                        "title": h.title,
                        "relevant": benchmark_relevant(benchmark, which, qid, h.id),
                    }
                    for h in hits
                ],
            }
    say(f"search: index of {len(benchmark.corpus)} passages -> {index_dir}")
    return index_dir, example


def benchmark_relevant(benchmark, which: str, qid: str, doc_id: str) -> bool:
    qrels = benchmark.qrels_og if which == "og" else benchmark.qrels_changed
    return qrels.get(qid, {}).get(doc_id, 0) > 0


def run_demo(config: DemoConfig | None = None, say: Callable[[str], None] = print) -> DemoResult:
    """Run the four capabilities in order; see the module docstring."""
    config = config or DemoConfig()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    kept, synth_summary = run_synth(config, say)
    model_path, train_rows = run_train(config, kept, say)
    benchmark = load_benchmark(demo_benchmark_path())
    benchmark.name = "demo"
    report, table, json_path, plot_path = run_eval(config, benchmark, model_path, say)
    index_dir, example = run_search(config, benchmark, model_path, say)
    results = report.results["demo"]
    scores = {
        label: {"p_mrr": r.p_mrr, "nDCG@10_og": r.metrics_og.get("nDCG@10")} for label, r in results.items()
    }
    summary_path = config.out_dir / "demo.json"
    outputs = {
        "synth rows": synth_summary["rows"],
        "model": str(model_path),
        "eval JSON": str(json_path),
        "plot": str(plot_path),
        "index": str(index_dir),
        "summary": str(summary_path),
    }
    write_json_atomic(
        summary_path,
        {
            "config": {k: str(v) for k, v in asdict(config).items()},
            "synth": synth_summary,
            "train_rows": train_rows,
            "scores": scores,
            "search_example": example,
            "outputs": outputs,
        },
    )
    return DemoResult(
        synth_kept=synth_summary["kept"],
        synth_rejected=synth_summary["rejected"],
        train_rows=train_rows,
        model_path=model_path,
        eval_json=json_path,
        plot=plot_path,
        index_dir=index_dir,
        scores=scores,
        search_example=example,
        outputs=outputs,
        table=table,
    )
