"""InF-IR synthesis: turn (query, passage) pairs into validated instruction-following rows (SPEC §2).

Main entry points: `synthesize` (the pipeline), `read_pairs` (BEIR folder or JSONL input),
`export_batch` / `import_batch` (offline OpenAI Batch API files) and `export_review` /
`import_review` (the human check of a sample).
"""

from infir.synth.batch import BatchClient, export_batch, import_batch
from infir.synth.pairs import read_pairs
from infir.synth.pipeline import SynthStats, synthesize, synthesize_async
from infir.synth.review import export_review, import_review

__all__ = [
    "BatchClient",
    "SynthStats",
    "export_batch",
    "export_review",
    "import_batch",
    "import_review",
    "read_pairs",
    "synthesize",
    "synthesize_async",
]
