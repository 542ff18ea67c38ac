"""Training throughput: source rows per second of the paper's multi:P,I against sentence-transformers' MNRL.

Every run trains its own copy of the same backbone (the packaged all-MiniLM-L6-v2, same initial
weights) in one process, on the same InF-IR rows, B rows per step, 256 tokens max for every text (so
length limits do not tilt the comparison). One step = tokenise, forward, backward, AdamW step; the
runs' steps are interleaved (run 1, run 2, ..., run 1, ...) so machine load hits all alike, and
cost ratios are of summed step times over the same batches (the JSON adds the median of per-step
ratios and the ratio of process CPU times, and records the load average: other processes on a shared
machine inflate every run, the more so the more encoder calls a step makes).

- ``ours``: ``InstructionLoss("multi:P,I")`` at the default swap count (M/2 − 1 per anchor, M = 3B):
  per row 3 query sides ("Q+ I+", "Q+ I−", "Q− I+"), 3 passages (P+, HN1, HN2) and the swap texts;
  texts are length-sorted and encoded in buckets (``bucket_tokens``).
- ``ours-one-call``: the same loss with ``bucket_tokens=None`` (query sides + swaps in one encoder
  call, passages in another: the padding of the code before bucketing).
- ``ours-swaps-no-grad``: the opt-in ``swap_gradients=False`` (a stop-gradient on the l_I swaps; not
  the paper's objective), measured apart.
- ``mnrl-pairs`` (peer a, the target's reference): ``MultipleNegativesRankingLoss`` on the same 3B
  (query side, passage) pairs, in-batch negatives: the texts our l_P term scores.
- ``mnrl-triplets`` (peer b): MNRL on one ("Q+ I+", P+, HN1) triplet per row, what a
  sentence-transformers user would train on InF-IR rows.

A forward hook on the backbone counts texts, real tokens and padded tokens encoded per row; the
report also splits each step into forward (tokenise + encode + loss), backward and optimiser time,
and our tokens per row into query sides, passages and swaps, which says what dominates. Target: ours
costs at most 1.5x peer (a) per source row. Results go to ``bench/results/train_throughput.json``.

    .venv/bin/python bench/train_throughput.py [--batch-sizes 4 8] [--steps 3] [--num-swaps N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from infir.data import INF_FIELDS, load_records, query_text, write_json_atomic
from infir.train import TrainConfig
from infir.train.losses import pairs_from_batch
from infir.train.losses.instruction_loss import DEFAULT_BUCKET_TOKENS
from infir.train.modeling import build_model
from infir.train.swaps import default_num_swaps, sample_swaps
from infir.train.trainer import build_loss

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULT = REPO_ROOT / "bench" / "results" / "train_throughput.json"
SHARED_TRAIN = REPO_ROOT.parent / "shared" / "data" / "infir-msmarco" / "train.jsonl"
MAX_LENGTH = 256
TARGET = 1.5
PEER = "mnrl-pairs"
VARIANTS = ("ours", "ours-one-call", "ours-swaps-no-grad", "mnrl-pairs", "mnrl-triplets")


def default_data() -> Path:
    """The real InF-IR sample beside the checkout when present, else the shipped demo set."""
    if SHARED_TRAIN.is_file():
        return SHARED_TRAIN
    from infir.data.demo import demo_train_path

    return demo_train_path()


class EncodeCounter:
    """Counts texts, real tokens and padded tokens through the backbone (forward pre-hook)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.texts = self.tokens = self.padded_tokens = self.calls = 0
        module.register_forward_pre_hook(self._count)

    def _count(self, _module, args) -> None:
        mask = args[0]["attention_mask"]
        self.calls += 1
        self.texts += int(mask.shape[0])
        self.tokens += int(mask.sum())
        self.padded_tokens += int(mask.numel())


@dataclass
class Run:
    """One loss under test: its model copy, optimiser, step function and timings."""

    name: str
    model: torch.nn.Module
    loss_of: Callable[[list], torch.Tensor]
    optimizer: torch.optim.Optimizer
    times: dict[str, list[float]] = field(
        default_factory=lambda: {"forward": [], "backward": [], "optimizer": []}
    )
    cpu_times: list[float] = field(default_factory=list)
    counter: EncodeCounter | None = None

    def step(self, rows: list, timed: bool) -> None:
        started, cpu_started = time.perf_counter(), time.process_time()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_of(rows)
        forward_done = time.perf_counter()
        loss.backward()
        backward_done = time.perf_counter()
        self.optimizer.step()
        if timed:
            self.times["forward"].append(forward_done - started)
            self.times["backward"].append(backward_done - forward_done)
            self.times["optimizer"].append(time.perf_counter() - backward_done)
            self.cpu_times.append(time.process_time() - cpu_started)

    @property
    def step_times(self) -> list[float]:
        return [sum(parts) for parts in zip(*self.times.values(), strict=True)]


def _inf_batch(rows: list) -> dict[str, list[str]]:
    return {name: [getattr(row, name) for row in rows] for name in INF_FIELDS}


def _mnrl_features(model, columns: list[list[str]]) -> list[dict[str, torch.Tensor]]:
    features = []
    for texts in columns:
        tokenized = model.preprocess(texts)
        features.append({k: v for k, v in tokenized.items() if isinstance(v, torch.Tensor)})
    return features


def make_run(name: str, config: TrainConfig, bucket_tokens: int | None) -> Run:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.manual_seed(0)
    model = build_model(config, device="cpu")
    model.max_seq_length = MAX_LENGTH
    if name.startswith("ours"):
        loss = build_loss(model, config)
        if bucket_tokens is not None:
            loss.bucket_tokens = bucket_tokens
        if name == "ours-one-call":
            loss.bucket_tokens = None
        elif name == "ours-swaps-no-grad":
            loss.swap_gradients = False

        def loss_of(rows):
            return loss(_inf_batch(rows))

    else:
        mnrl = MultipleNegativesRankingLoss(model, scale=1.0 / config.temperature)
        if name == "mnrl-pairs":

            def loss_of(rows):
                queries, instructions, passages = pairs_from_batch(_inf_batch(rows))
                anchors = [query_text(q, i) for q, i in zip(queries, instructions, strict=True)]
                return mnrl(_mnrl_features(model, [anchors, passages]), None)

        elif name == "mnrl-triplets":

            def loss_of(rows):
                columns = [
                    [query_text(r.query_positive, r.instruction_positive) for r in rows],
                    [r.document_positive for r in rows],
                    [r.hard_negative_document_1 for r in rows],
                ]
                return mnrl(_mnrl_features(model, columns), None)

        else:
            raise ValueError(f"unknown variant {name!r}; expected one of {VARIANTS}")
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    return Run(name, model, loss_of, optimizer)


def our_tokens_per_row(model, batches: list[list], num_swaps: int | None) -> dict[str, float]:
    """Real tokens per row of each part of our step; swaps from an independent draw of the same sampler."""
    tokenizer = model[0].tokenizer
    rng = random.Random(1)

    def tokens(texts: list[str]) -> int:
        return sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"])

    parts = {"query_sides": 0, "passages": 0, "swaps": 0, "swap_texts": 0}
    for rows in batches:
        queries, instructions, passages = pairs_from_batch(_inf_batch(rows))
        plan = sample_swaps(queries, instructions, num_swaps, rng)
        parts["query_sides"] += tokens([query_text(q, i) for q, i in zip(queries, instructions, strict=True)])
        parts["passages"] += tokens(passages)
        parts["swaps"] += tokens(plan.texts) if plan.texts else 0
        parts["swap_texts"] += len(plan.texts)
    num_rows = sum(len(rows) for rows in batches)
    return {name: round(value / num_rows, 1) for name, value in parts.items()}


def bench_batch_size(
    records, batch_size: int, steps: int, num_swaps: int | None, variants, bucket_tokens: int | None
) -> dict:
    rng = random.Random(batch_size)
    needed = batch_size * (steps + 1)
    if len(records) < needed:
        raise SystemExit(f"{len(records)} rows, need {needed} for {steps + 1} steps of {batch_size}")
    rows = rng.sample(records, needed)
    batches = [rows[i : i + batch_size] for i in range(0, needed, batch_size)]
    config = TrainConfig(max_query_length=MAX_LENGTH, max_passage_length=MAX_LENGTH, num_swaps=num_swaps)
    runs = [make_run(name, config, bucket_tokens) for name in variants]
    for run in runs:
        run.step(batches[0], timed=False)  # warm-up, untimed
        run.counter = EncodeCounter(run.model[0])
    for number, batch in enumerate(batches[1:], start=1):
        for run in runs:
            run.step(batch, timed=True)
        print(
            f"  B={batch_size} step {number}/{steps}: "
            + ", ".join(f"{run.name} {run.step_times[-1]:.1f}s" for run in runs),
            flush=True,
        )

    timed_rows = batch_size * steps
    results = {}
    for run in runs:
        total = sum(run.step_times)
        results[run.name] = {
            "rows_per_second": round(timed_rows / total, 4),
            "median_step_seconds": round(statistics.median(run.step_times), 3),
            "cpu_seconds_per_step": round(sum(run.cpu_times) / steps, 3),
            "seconds_per_step": {part: round(sum(t) / steps, 3) for part, t in run.times.items()},
            "texts_per_row": round(run.counter.texts / timed_rows, 2),
            "tokens_per_row": round(run.counter.tokens / timed_rows, 1),
            "padded_tokens_per_row": round(run.counter.padded_tokens / timed_rows, 1),
            "encoder_calls_per_step": round(run.counter.calls / steps, 1),
        }
    # Cost ratio per source row = ours' step time / the peer's on the same batches. Headline: the ratio
    # of summed times; beside it the median of per-step ratios (adjacent in time, so robust to bursts
    # of load from other processes) and the ratio of summed process CPU times.
    by_name = {run.name: run for run in runs}
    ratios = {}
    per_step_medians = {}
    for run in runs:
        if not run.name.startswith("ours"):
            continue
        for peer in ("mnrl-pairs", "mnrl-triplets"):
            if peer not in by_name:
                continue
            other = by_name[peer]
            ratios.setdefault(run.name, {})[peer] = round(sum(run.step_times) / sum(other.step_times), 3)
            per_step_medians.setdefault(run.name, {})[peer] = {
                "median_per_step_ratio": round(
                    statistics.median(a / b for a, b in zip(run.step_times, other.step_times, strict=True)),
                    3,
                ),
                "cpu_time_ratio": round(sum(run.cpu_times) / sum(other.cpu_times), 3),
            }
    return {
        "batch_size_rows": batch_size,
        "pairs_per_step": 3 * batch_size,
        "swaps_per_anchor": default_num_swaps(3 * batch_size) if num_swaps is None else num_swaps,
        "timed_steps": steps,
        "our_tokens_per_row_by_part": our_tokens_per_row(runs[0].model, batches[1:], num_swaps),
        "results": results,
        "cost_ratio_per_row": ratios,
        "cost_ratio_per_row_other_estimates": per_step_medians,
        "meets_target_vs_mnrl_pairs": {
            name: ratio[PEER] <= TARGET for name, ratio in ratios.items() if PEER in ratio
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps per loss (after 1 warm-up step)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8], help="source rows per step")
    parser.add_argument("--data", type=Path, default=None, help="InF-IR JSONL (default: shared or demo)")
    parser.add_argument("--num-swaps", type=int, default=None, help="swaps per anchor (default M/2-1)")
    parser.add_argument(
        "--bucket-tokens",
        type=int,
        default=None,
        help=f"bucket size of ours (default {DEFAULT_BUCKET_TOKENS})",
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--out", type=Path, default=RESULT, help="result JSON")
    args = parser.parse_args()

    data = args.data or default_data()
    records, _ = load_records(data, skip_invalid=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    by_batch_size = {}
    for batch_size in args.batch_sizes:
        by_batch_size[f"B={batch_size}"] = bench_batch_size(
            records, batch_size, args.steps, args.num_swaps, args.variants, args.bucket_tokens
        )
    report = {
        "benchmark": "train_throughput",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "load_average_1_5_15_before": [round(x, 2) for x in load_before],
            "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "model": "all-MiniLM-L6-v2 (packaged), train mode (dropout on), AdamW",
            "data": str(data),
            "max_length": MAX_LENGTH,
            "objective": "multi:P,I",
            "num_swaps": "M/2-1" if args.num_swaps is None else args.num_swaps,
            "bucket_tokens": args.bucket_tokens or DEFAULT_BUCKET_TOKENS,
            "peers": {
                "mnrl-pairs": "MNRL on the 3B (query side, passage) pairs (target peer)",
                "mnrl-triplets": "MNRL on B (Q+ I+, P+, HN1) triplets",
            },
            "target": f"ours costs <= {TARGET}x {PEER} per source row",
            "wall_seconds": round(time.perf_counter() - started, 1),
        },
        "by_batch_size": by_batch_size,
    }
    write_json_atomic(args.out, report)
    for key, entry in by_batch_size.items():
        print(f"{key} ({entry['swaps_per_anchor']} swaps per anchor):")
        for name, r in entry["results"].items():
            split = r["seconds_per_step"]
            print(
                f"  {name:19s} {r['rows_per_second']:7.3f} rows/s  step {r['median_step_seconds']:6.2f}s "
                f"(fwd {split['forward']:.2f} bwd {split['backward']:.2f} opt {split['optimizer']:.2f})  "
                f"{r['texts_per_row']:5.1f} texts/row  {r['tokens_per_row']:6.1f} tokens/row "
                f"({r['padded_tokens_per_row']:.0f} padded)"
            )
        parts = entry["our_tokens_per_row_by_part"]
        print(
            f"  ours' real tokens per row: query sides {parts['query_sides']}, passages {parts['passages']}, "
            f"swaps {parts['swaps']} ({parts['swap_texts']} swap texts)"
        )
        for name, ratio in entry["cost_ratio_per_row"].items():
            shown = ", ".join(f"{ratio[peer]:.2f}x {peer}" for peer in ratio)
            print(f"  {name} costs {shown} per source row (target <= {TARGET}x {PEER})")
    print(f"written to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
