"""Instruction-following evaluation: p-MRR, standard metrics, dense and BM25 retrievers, reports.

from infir.evaluate import evaluate, render_table, write_outputs
report = evaluate(["default", "bm25"], ["tests/fixtures/followir_mini"])
"""

from infir.evaluate.report import plot_report, render_table, report_to_json, write_outputs, write_runs
from infir.evaluate.retrievers import BM25Retriever, DenseRetriever, Retriever, make_retriever
from infir.evaluate.runner import DEFAULT_MEASURES, EvalReport, ModelResult, evaluate, run_benchmark

__all__ = [
    "DEFAULT_MEASURES",
    "BM25Retriever",
    "DenseRetriever",
    "EvalReport",
    "ModelResult",
    "Retriever",
    "evaluate",
    "make_retriever",
    "plot_report",
    "render_table",
    "report_to_json",
    "run_benchmark",
    "write_outputs",
    "write_runs",
]
