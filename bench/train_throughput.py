"""Training throughput: source rows per second of the paper's multi:P,I against sentence-transformers' MNRL.

Both train the same backbone (the packaged all-MiniLM-L6-v2, two copies with the same initial
weights) in one process, on the same InF-IR rows, batch size and max length (256 tokens for every
text, so length limits do not tilt the comparison). One step = tokenise, forward, backward, AdamW
step, timed per step and interleaved (ours, MNRL, ours, ...) so machine noise hits both alike.

- ours: ``InstructionLoss("multi:P,I")`` at the default swap count (M/2 − 1 per anchor): per row 3
  query sides ("Q+ I+", "Q+ I−", "Q− I+"), 3 passages (P+, HN1, HN2) and the swap texts.
- peer: ``MultipleNegativesRankingLoss`` on (anchor "Q+ I+", positive P+, negative HN1) triplets from
  the same rows: 1 query side + 2 passages per row.

A forward hook on the backbone counts texts and real tokens encoded per row, which says what
dominates the cost. Target: ours costs at most 1.5x MNRL per source row. Results (rows/s, ratio,
texts/tokens per row, machine, date, settings) go to ``bench/results/train_throughput.json``.

    .venv/bin/python bench/train_throughput.py [--steps 6] [--batch-size 4] [--data FILE]
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
from pathlib import Path

import torch

from infir.data import INF_FIELDS, load_records, query_text, write_json_atomic
from infir.train import TrainConfig
from infir.train.modeling import build_model
from infir.train.trainer import build_loss

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULT = REPO_ROOT / "bench" / "results" / "train_throughput.json"
SHARED_TRAIN = REPO_ROOT.parent / "shared" / "data" / "infir-msmarco" / "train.jsonl"
MAX_LENGTH = 256


def default_data() -> Path:
    """The real InF-IR sample beside the checkout when present, else the shipped demo set."""
    if SHARED_TRAIN.is_file():
        return SHARED_TRAIN
    from infir.data.demo import demo_train_path

    return demo_train_path()


class EncodeCounter:
    """Counts texts and non-padding tokens through the backbone (forward pre-hook)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.texts = 0
        self.tokens = 0
        module.register_forward_pre_hook(self._count)

    def _count(self, _module, args) -> None:
        features = args[0]
        self.texts += int(features["attention_mask"].shape[0])
        self.tokens += int(features["attention_mask"].sum())


def make_ours(config: TrainConfig):
    model = build_model(config, device="cpu")
    model.max_seq_length = MAX_LENGTH
    loss = build_loss(model, config)
    return model, loss


def make_mnrl(config: TrainConfig):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = build_model(config, device="cpu")
    model.max_seq_length = MAX_LENGTH
    return model, MultipleNegativesRankingLoss(model, scale=1.0 / config.temperature)


def step_ours(model, loss, optimizer, rows) -> None:
    batch = {name: [getattr(row, name) for row in rows] for name in INF_FIELDS}
    optimizer.zero_grad()
    loss(batch).backward()
    optimizer.step()


def step_mnrl(model, loss, optimizer, rows) -> None:
    columns = [
        [query_text(r.query_positive, r.instruction_positive) for r in rows],
        [r.document_positive for r in rows],
        [r.hard_negative_document_1 for r in rows],
    ]
    features = []
    for texts in columns:
        tokenized = model.preprocess(texts)
        features.append({k: v for k, v in tokenized.items() if isinstance(v, torch.Tensor)})
    optimizer.zero_grad()
    loss(features, None).backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6, help="timed steps per loss (after 1 warm-up step)")
    parser.add_argument("--batch-size", type=int, default=4, help="source rows per step")
    parser.add_argument(
        "--data", type=Path, default=None, help="InF-IR JSONL (default: shared sample or demo)"
    )
    parser.add_argument("--num-swaps", type=int, default=None, help="swaps per anchor (default M/2-1)")
    args = parser.parse_args()

    data = args.data or default_data()
    records, _ = load_records(data, skip_invalid=True)
    rng = random.Random(0)
    needed = args.batch_size * (args.steps + 1)
    if len(records) < needed:
        raise SystemExit(f"{data}: {len(records)} rows, need {needed} for {args.steps + 1} steps")
    rows = rng.sample(records, needed)
    batches = [rows[i : i + args.batch_size] for i in range(0, needed, args.batch_size)]

    config = TrainConfig(max_query_length=MAX_LENGTH, max_passage_length=MAX_LENGTH, num_swaps=args.num_swaps)
    torch.manual_seed(0)
    runs = {"ours": (make_ours(config), step_ours), "mnrl": (make_mnrl(config), step_mnrl)}
    state = {}
    for name, ((model, loss), step) in runs.items():
        model.train()
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
        )
        state[name] = {"model": model, "loss": loss, "step": step, "optimizer": optimizer, "times": []}
        step(model, loss, optimizer, batches[0])  # warm-up, untimed
        state[name]["counter"] = EncodeCounter(model[0])

    for batch in batches[1:]:
        for s in state.values():
            started = time.perf_counter()
            s["step"](s["model"], s["loss"], s["optimizer"], batch)
            s["times"].append(time.perf_counter() - started)

    timed_rows = args.batch_size * args.steps
    results = {}
    for name, s in state.items():
        seconds = sum(s["times"])
        results[name] = {
            "rows_per_second": round(timed_rows / seconds, 3),
            "median_step_seconds": round(statistics.median(s["times"]), 4),
            "texts_per_row": round(s["counter"].texts / timed_rows, 2),
            "tokens_per_row": round(s["counter"].tokens / timed_rows, 1),
        }
    ratio = results["mnrl"]["rows_per_second"] / results["ours"]["rows_per_second"]
    tokens_ratio = results["ours"]["tokens_per_row"] / results["mnrl"]["tokens_per_row"]
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
        },
        "settings": {
            "model": "all-MiniLM-L6-v2 (packaged)",
            "data": str(data),
            "batch_size_rows": args.batch_size,
            "timed_steps": args.steps,
            "max_length": MAX_LENGTH,
            "objective": config.objective,
            "num_swaps": "M/2-1" if args.num_swaps is None else args.num_swaps,
            "peer": "MultipleNegativesRankingLoss on (Q+ I+, P+, HN1)",
        },
        "results": results,
        "cost_ratio_ours_over_mnrl_per_row": round(ratio, 3),
        "tokens_ratio_ours_over_mnrl_per_row": round(tokens_ratio, 3),
        "target_max_cost_ratio": 1.5,
        "meets_target": ratio <= 1.5,
    }
    write_json_atomic(RESULT, report)
    for name, r in results.items():
        print(
            f"{name:5s} {r['rows_per_second']:8.3f} rows/s  {r['texts_per_row']:6.2f} texts/row  "
            f"{r['tokens_per_row']:7.1f} tokens/row"
        )
    print(
        f"multi:P,I costs {ratio:.2f}x MNRL per source row ({tokens_ratio:.2f}x the tokens); target <= 1.5x"
    )
    print(f"written to {RESULT}")


if __name__ == "__main__":
    sys.exit(main())
