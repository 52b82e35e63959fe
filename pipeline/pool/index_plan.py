"""Choosing the index for a vector count, dimension and memory budget: lists, coarse quantizer, OPQ, codes."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

HNSW_LISTS = 65536  # from this many lists on (about 34M vectors), the coarse quantizer is an HNSW graph
HNSW_M = 32  # graph neighbours per centroid
MAX_FLAT_LISTS = 65536
MAX_HNSW_LISTS = 262144  # faiss's choice for 1B vectors
PQ_CENTROIDS = 256  # an 8-bit PQ code's centroids per sub-vector: the fewest training vectors faiss accepts
MAX_RERANK = 64  # tuning raises the default factor up to this when the PQ codes miss the recall target
RERANK = 4  # default: a PQ index returns 4 x max(k, 100) candidates, re-scored exactly from the stored embeddings
COARSE = ("auto", "flat", "hnsw")
OPQ = ("auto", "on", "off")

RERANK_HELP = (
    f"re-score N x max(k, 100) PQ candidates exactly from the stored fp16 embeddings (default: the index's own, "
    f"{RERANK} for PQ indexes or more where tuning raised it; 0 turns it off; Flat indexes score exactly already)"
)


def rerank_count(text: str) -> int:
    """argparse type of --rerank: an integer >= 0, else a one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rerank takes an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--rerank takes an integer >= 0, got {value}")
    return value


@dataclass
class IndexPlan:
    """The index chosen for a vector count, dimension and memory budget."""

    factory: str
    nlist: int
    dim: int
    count: int
    code_bytes: int  # per vector, in the inverted lists
    memory_bytes: int  # estimated resident size when served from memory
    coarse: str = "flat"  # the coarse quantizer: 'flat' (exact) or 'hnsw' (a graph over the centroids)
    opq: bool = False  # an OPQ rotation in front of the PQ codes
    rerank: int = 0  # candidates per result re-scored exactly at search time (0: the codes are exact)
    rerank_chosen: bool = False  # the factor was given (--rerank); else tuning may raise it up to MAX_RERANK


def _lists(count: int, per_sqrt: float, cap: int) -> int:
    """A power of 2 near per_sqrt x sqrt(count), at most `cap` and at most count / 39 (faiss's training floor)."""
    nlist = max(1, min(cap, 2 ** round(math.log2(max(1.0, per_sqrt * math.sqrt(count))))))
    return min(nlist, max(1, count // 39))


def plan_index(
    count: int, dim: int, max_memory: int, coarse: str = "auto", opq: str = "auto", rerank: int | None = None
) -> IndexPlan:
    """Pick IVF lists, the coarse quantizer and a code (Flat, else [OPQ +] PQ small enough for the budget).

    A flat quantizer compares a vector with every centroid, so about 2 sqrt(count) lists balance build cost
    against query cost. An HNSW quantizer finds the nearest centroids in log time, which pays for 4x as many
    lists (8 sqrt(count), faiss's IVF65536_HNSW32 at 100M and IVF262144_HNSW32 at 1B); `auto` switches to it once
    that reaches 65536 lists. OPQ (`auto`: with every PQ code) rotates the space so that the PQ sub-vectors carry
    equal variance; it costs d x d floats. PQ scores are approximate, so a PQ plan re-ranks `rerank` x k candidates.
    """
    if count <= 0:
        raise ValueError("no vectors to index")
    if dim <= 0 or max_memory <= 0:
        raise ValueError(f"dim and max_memory must be positive, got {dim} and {max_memory}")
    if coarse not in COARSE or opq not in OPQ:
        raise ValueError(f"coarse must be one of {COARSE} and opq one of {OPQ}, got {coarse!r} and {opq!r}")
    if rerank is not None and rerank < 0:
        raise ValueError(f"rerank must be >= 0, got {rerank}")
    hnsw_lists = _lists(count, 8, MAX_HNSW_LISTS)
    use_hnsw = coarse == "hnsw" or (coarse == "auto" and hnsw_lists >= HNSW_LISTS)
    nlist = hnsw_lists if use_hnsw else _lists(count, 2, MAX_FLAT_LISTS)
    ivf = f"IVF{nlist}_HNSW{HNSW_M}" if use_hnsw else f"IVF{nlist}"
    overhead = nlist * dim * 4 + count * 8  # centroids and ids
    if use_hnsw:
        overhead += nlist * HNSW_M * 2 * 4  # the graph's neighbour lists (level 0 holds 2M links)
    code, factory, with_opq = dim * 4, f"{ivf},Flat", False
    if overhead + count * code > max_memory:
        if count < PQ_CENTROIDS:
            raise ValueError(
                f"{count} vectors of dim {dim} fit in {max_memory} bytes only as PQ codes, and PQ codes need at least "
                f"{PQ_CENTROIDS} vectors to train; raise the memory budget"
            )
        with_opq = opq != "off"
        overhead += dim * dim * 4 if with_opq else 0
        for m in sorted((m for m in range(1, dim + 1) if dim % m == 0 and m <= 64), reverse=True):
            if overhead + count * m <= max_memory:
                code, factory = m, f"{f'OPQ{m},' if with_opq else ''}{ivf},PQ{m}x8"
                break
        else:
            raise ValueError(f"{count} vectors of dim {dim} do not fit in {max_memory} bytes even as PQ codes")
    elif opq == "on":
        raise ValueError("--opq on needs PQ codes, but the vectors fit the budget uncompressed (IVF,Flat)")
    exact = factory.endswith(",Flat")
    factor = 0 if exact else (RERANK if rerank is None else rerank)
    coarse_name = "hnsw" if use_hnsw else "flat"
    chosen = rerank is not None
    return IndexPlan(factory, nlist, dim, count, code, overhead + count * code, coarse_name, with_opq, factor, chosen)
