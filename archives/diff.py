"""What changed between two archive runs: items added, removed and kept per concept, rank moves, strength."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archives.archive import Archive, list_archives


def _diff_one(a: Archive, b: Archive) -> dict:
    ranks_a = dict(zip(a.ids, a.items.column("rank").to_pylist(), strict=True))
    ranks_b = dict(zip(b.ids, b.items.column("rank").to_pylist(), strict=True))
    kept = [i for i in ranks_a if i in ranks_b]
    moves = [ranks_b[i] - ranks_a[i] for i in kept]
    return {
        "concept": a.concept,
        "added": len(set(ranks_b) - set(ranks_a)),
        "removed": len(set(ranks_a) - set(ranks_b)),
        "kept": len(kept),
        "mean_rank_change": float(np.mean(moves)) if moves else None,  # positive: kept items moved down
        "strength_before": a.query.get("strength"),
        "strength_after": b.query.get("strength"),
        "weak_before": a.query.get("weak"),
        "weak_after": b.query.get("weak"),
    }


def diff_runs(run_a: Path | str, run_b: Path | str) -> dict:
    """Per-concept differences between two run folders (archives/{model_id}/{run}/), matched by concept name."""
    a = {x.concept.casefold(): x for x in list_archives(run_a)}
    b = {x.concept.casefold(): x for x in list_archives(run_b)}
    return {
        "run_a": str(run_a),
        "run_b": str(run_b),
        "concepts": [_diff_one(a[key], b[key]) for key in sorted(a) if key in b],
        "only_in_a": sorted(a[key].concept for key in a if key not in b),
        "only_in_b": sorted(b[key].concept for key in b if key not in a),
    }


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def diff_table(diff: dict) -> str:
    """The diff as a plain-text table, with the concepts found in only one run listed under it."""
    header = f"{'concept':<20} {'added':>6} {'removed':>7} {'kept':>5} {'rank Δ':>7} {'strength':>17}"
    lines = [header, "-" * len(header)]
    for row in diff["concepts"]:
        strength = f"{_num(row['strength_before'])} -> {_num(row['strength_after'])}"
        lines.append(
            f"{row['concept']:<20} {row['added']:>6} {row['removed']:>7} {row['kept']:>5} "
            f"{_num(row['mean_rank_change']):>7} {strength:>17}"
        )
    if diff["only_in_a"]:
        lines.append(f"only in {Path(diff['run_a']).name}: {', '.join(diff['only_in_a'])}")
    if diff["only_in_b"]:
        lines.append(f"only in {Path(diff['run_b']).name}: {', '.join(diff['only_in_b'])}")
    return "\n".join(lines)
