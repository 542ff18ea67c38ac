"""The faiss side: exact inner product by default, HNSW or IVF as approximate options."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import faiss

IndexType = Literal["flat", "hnsw", "ivf"]
INDEX_TYPES: tuple[str, ...] = ("flat", "hnsw", "ivf")


@dataclass(frozen=True)
class FaissOptions:
    """Parameters of the approximate indexes (ignored by "flat").

    Args:
        hnsw_m: graph degree of HNSW; more links, better recall, more memory.
        hnsw_ef_construction: candidate list size while building the graph.
        hnsw_ef_search: candidate list size per query (raise for recall, lower for speed).
        ivf_nlist: IVF clusters; None picks about 4·sqrt(n), at most n/39 (faiss wants 39+
            training points per cluster).
        ivf_nprobe: clusters visited per query.
    """

    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None
    ivf_nprobe: int = 16

    def to_dict(self) -> dict:
        return asdict(self)


def ivf_nlist(count: int, options: FaissOptions) -> int:
    if options.ivf_nlist is not None:
        return options.ivf_nlist
    return max(1, min(int(4 * math.sqrt(count)), count // 39))


def create_faiss_index(index_type: str, dimension: int, count: int, options: FaissOptions) -> faiss.Index:
    """An empty inner-product index (vectors must be L2-normalised, so scores are cosines).

    IVF comes back untrained: call ``index.train(sample)`` before adding.
    """
    if index_type == "flat":
        return faiss.IndexFlatIP(dimension)
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = options.hnsw_ef_construction
        index.hnsw.efSearch = options.hnsw_ef_search
        return index
    if index_type == "ivf":
        quantizer = faiss.IndexFlatIP(dimension)
        index = faiss.IndexIVFFlat(
            quantizer, dimension, ivf_nlist(count, options), faiss.METRIC_INNER_PRODUCT
        )
        index.nprobe = options.ivf_nprobe
        return index
    raise ValueError(f"unknown index type {index_type!r}; expected one of {INDEX_TYPES}")


def apply_search_options(index: faiss.Index, index_type: str, options: FaissOptions) -> None:
    """Set the per-query knobs on an index read back from disk."""
    if index_type == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = options.hnsw_ef_search
    elif index_type == "ivf":
        faiss.extract_index_ivf(index).nprobe = options.ivf_nprobe
