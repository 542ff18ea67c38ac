"""Corpus encoding speed: `infir.embed.encode_passages` against plain `SentenceTransformer.encode`.

Same model (the packaged MiniLM), same texts (real passages from ../shared/data), same batch size,
same process; the two are timed in alternating rounds so machine load drifts hit both alike, and
the best round of each is compared. Also measured, to see whether anything beyond plain encode is
worth doing on this machine:

- padding waste: padded / real tokens of the batches ST builds (it sorts by *character* length)
  against batches in exact *token*-length order (what `encode_passages` does); a deterministic
  number, unaffected by machine load;
- the batch size (16 / 64 / 128) of plain encode.

ONNX / OpenVINO / int8 backends of sentence-transformers need optimum + onnxruntime/openvino, which
are not installed here; the script records which of them import.

    .venv/bin/python bench/encode_speed.py [--n 2000] [--dataset msmarco-sample] [--rounds 2] [--no-extras]

On a quiet 2-core machine 2,000 passages run well under 3 minutes; on a shared, loaded one lower
--n (the recorded run says which n and the load average it saw).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULT = ROOT / "bench" / "results" / "encode_speed.json"


def padding_ratio(lengths: list[int], order: np.ndarray, batch_size: int) -> float:
    """Tokens the model computes (batch max x batch size) over real tokens, for one batch order."""
    ordered = np.asarray(lengths)[order]
    padded = sum(
        int(ordered[i : i + batch_size].max()) * len(ordered[i : i + batch_size])
        for i in range(0, len(ordered), batch_size)
    )
    return padded / int(ordered.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="passages to encode")
    parser.add_argument("--dataset", default="msmarco-sample", help="BEIR folder under ../shared/data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds per variant")
    parser.add_argument("--no-extras", action="store_true", help="time only ours vs plain encode")
    parser.add_argument("--out", type=Path, default=RESULT, help="result JSON path")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from infir.data.beir import read_corpus
    from infir.embed import encode_passages, token_lengths
    from infir.models import load_model

    corpus = read_corpus(SHARED / args.dataset / "corpus.jsonl")
    texts = [document.full_text for document in list(corpus.values())[: args.n]]
    model = load_model("default", device="cpu")
    lengths = token_lengths(model, texts)
    model.encode(texts[:32], batch_size=32)  # warm-up: first-call allocations are nobody's cost

    bs = args.batch_size
    variants = {
        "plain_st_encode": lambda: model.encode(
            texts, batch_size=bs, convert_to_numpy=True, normalize_embeddings=True
        ),
        "infir_encode_passages": lambda: encode_passages(model, texts, batch_size=bs),
    }
    if not args.no_extras:
        variants["plain_st_encode_bs16"] = lambda: model.encode(
            texts, batch_size=16, normalize_embeddings=True
        )
        variants["plain_st_encode_bs128"] = lambda: model.encode(
            texts, batch_size=128, normalize_embeddings=True
        )

    seconds: dict[str, list[float]] = {name: [] for name in variants}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, run in variants.items():
            started = time.perf_counter()
            outputs[name] = run()
            seconds[name].append(time.perf_counter() - started)

    reference = outputs["plain_st_encode"]
    rows = {}
    for name, times in seconds.items():
        best = min(times)
        rows[name] = {
            "seconds_best": round(best, 3),
            "seconds_all": [round(t, 3) for t in times],
            "passages_per_second": round(len(texts) / best, 2),
            "max_abs_diff_vs_plain": float(np.abs(outputs[name] - reference).max()),
        }
    ratio = rows["plain_st_encode"]["seconds_best"] / rows["infir_encode_passages"]["seconds_best"]

    st_order = np.argsort([-len(t) for t in texts], kind="stable")  # what ST's encode does
    token_order = np.argsort([-n for n in lengths], kind="stable")
    result = {
        "benchmark": "encode_speed",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "model": "all-MiniLM-L6-v2 (packaged default)",
        "dataset": args.dataset,
        "passages": len(texts),
        "mean_tokens": round(float(np.mean(lengths)), 1),
        "batch_size": bs,
        "rounds": args.rounds,
        "variants": rows,
        "ratio_ours_over_plain": round(ratio, 3),
        "padding_ratio": {
            "st_char_length_sorted": round(padding_ratio(lengths, st_order, bs), 4),
            "exact_token_length_sorted": round(padding_ratio(lengths, token_order, bs), 4),
            "unsorted": round(padding_ratio(lengths, np.arange(len(texts)), bs), 4),
        },
        "backends_importable": {
            name: importlib.util.find_spec(name) is not None
            for name in ("onnxruntime", "optimum", "openvino")
        },
    }

    from infir.data.io import write_json_atomic

    write_json_atomic(args.out, result)
    for name, row in rows.items():
        print(f"{name:24s} {row['passages_per_second']:8.2f} passages/s  (best of {row['seconds_all']} s)")
    print(f"padding ratio: {result['padding_ratio']}")
    print(f"ratio ours / plain SentenceTransformer.encode: {ratio:.3f}x  -> {args.out}")


if __name__ == "__main__":
    main()
