"""Instruction-aware search: build an index folder, open it, search it, serve it over HTTP.

>>> from infir.search import build_index, Index
>>> build_index("default", "corpus.jsonl", "my-index")          # doctest: +SKIP
>>> Index.open("my-index").search("python", instruction="the snake")  # doctest: +SKIP
"""

from infir.search.ann import INDEX_TYPES, FaissOptions, create_faiss_index
from infir.search.build import BuildReport, build_index
from infir.search.corpus import read_search_corpus
from infir.search.index import Hit, Index, read_manifest
from infir.search.layout import InvalidIndexError
from infir.search.service import create_app, serve

__all__ = [
    "INDEX_TYPES",
    "BuildReport",
    "FaissOptions",
    "Hit",
    "Index",
    "InvalidIndexError",
    "build_index",
    "create_app",
    "create_faiss_index",
    "read_manifest",
    "read_search_corpus",
    "serve",
]
