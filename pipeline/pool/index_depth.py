"""nprobe by depth: a top-1000 needs more inverted lists searched than a top-10, so the build tunes both.

The build tunes nprobe for recall@10 (and re-ranked recall@100), then, starting from it, the nprobe that keeps
recall at the target for a deep top-k (DEEP_DEPTH, or a quarter of a small pool). A search of depth k uses the first
up to depth 100, the deep one at its depth, a geometric blend in between, and grows it in proportion to k beyond.
Indexes built before this have no deep entry and search every depth with the one nprobe.
"""

from __future__ import annotations

import math

SHALLOW_DEPTH = 100  # the depth the first nprobe is tuned at (recall@100 with re-ranking)
DEEP_DEPTH = 1000  # the archive depth the second nprobe is tuned at


def deep_depth(count: int) -> int | None:
    """The depth to tune the deep nprobe at for a pool of `count` vectors; None when it would not be deeper than 100."""
    depth = min(DEEP_DEPTH, count // 4)
    return depth if depth > SHALLOW_DEPTH else None


def nprobe_for_depth(info: dict, k: int) -> int:
    """Lists to search for a top-k on the index described by `info` (its index.json), never more than every list."""
    nprobe, deep = int(info["nprobe"]), info.get("deep")
    if not deep or k <= SHALLOW_DEPTH:
        return nprobe
    lists = int(info.get("nlist", deep["nprobe"]))
    depth, deep_nprobe = int(deep["depth"]), int(deep["nprobe"])
    if k >= depth:
        wanted = deep_nprobe * k / depth  # candidates, hence lists, in proportion to the depth
    else:
        share = math.log(k / SHALLOW_DEPTH) / math.log(depth / SHALLOW_DEPTH)
        wanted = nprobe * (deep_nprobe / nprobe) ** share
    return max(nprobe, min(lists, math.ceil(wanted - 1e-9)))


def deep_counts(info: dict) -> dict[str, float]:
    """The deep tuning of an index.json as counts ({"deep_nprobe": 256, "recall@1000": 0.98}); empty without one."""
    deep = info.get("deep")
    return {"deep_nprobe": deep["nprobe"], f"recall@{deep['depth']}": deep["recall"]} if deep else {}


def describe_deep(info: dict) -> str:
    """The deep tuning of an index.json as a clause (", recall@1000 0.980 at nprobe 256"); empty without one."""
    deep = info.get("deep")
    return f", recall@{deep['depth']} {deep['recall']:.3f} at nprobe {deep['nprobe']}" if deep else ""
