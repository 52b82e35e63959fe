"""The `coarchive index` options that choose how the index is built: device, coarse quantizer, OPQ, re-ranking."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pipeline.pool.index_device import DEVICES
from pipeline.pool.index_plan import COARSE, OPQ, RERANK, RERANK_HELP, rerank_count

__all__ = ["RERANK_HELP", "add_build_options", "build_options", "rerank_count", "text_device"]

if TYPE_CHECKING:
    from pipeline.app.nightly.config import IndexConfig
    from pipeline.pool.index import BuildOptions


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """--device, --coarse, --opq and --rerank on the index command."""
    parser.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help="where the text queries, k-means and list assignment run: auto (faiss-gpu if it sees a GPU, else "
        "torch on CUDA, else the CPU), cpu, or cuda (an error without a GPU); faiss-cpu always holds the index",
    )
    parser.add_argument(
        "--coarse",
        default="auto",
        choices=COARSE,
        help="coarse quantizer: flat (exact), hnsw (a graph over the centroids, for 100M+ vectors), or auto "
        "(hnsw from 65536 lists, about 34M vectors)",
    )
    parser.add_argument(
        "--opq",
        default="auto",
        choices=OPQ,
        help="an OPQ rotation before PQ codes: auto (whenever the budget forces PQ), on, or off",
    )
    parser.add_argument(
        "--rerank",
        type=rerank_count,
        default=None,
        help=f"PQ candidates per result re-scored exactly, used to tune nprobe and as the default of query and "
        f"archive (default {RERANK}; 0: off)",
    )


def build_options(choices: argparse.Namespace | IndexConfig) -> BuildOptions:
    """The BuildOptions that parsed flags or the nightly config's index section ask for (device resolved to a
    backend): both carry device, coarse, opq and rerank."""
    from pipeline.pool.index import BuildOptions
    from pipeline.pool.index_device import resolve_device

    return BuildOptions(resolve_device(choices.device), choices.coarse, choices.opq, choices.rerank)


def text_device(device: str) -> str | None:
    """The torch device of the text encoder for --device (None: cuda when available)."""
    return None if device == "auto" else device
