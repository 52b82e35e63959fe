"""CaR's recurrence: propose masks for the current queries, keep the confident ones, repeat until the set is stable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")  # whatever the proposal step returns (e.g. (Q, H, W) maps)


@dataclass
class Step:
    """One iteration: the queries whose masks were proposed, each one's own score, and those kept."""

    queries: list[int]
    scores: list[float]
    kept: list[int]


@dataclass
class Recurrence(Generic[P]):
    """The final query set, its proposals, every iteration, and why it stopped ('stable' or 'cap')."""

    queries: list[int]
    proposals: P
    steps: list[Step] = field(default_factory=list)
    stopped: str = "stable"


def keep_confident(
    queries: Sequence[int], scores: Sequence[float], confidence: float, groups: Sequence[int] | None = None
) -> list[int]:
    """Queries whose own score exceeds `confidence`; the best-scoring one if none does. With `groups` (a group id
    per query index) the rule holds within each group, as if each group ran its own recurrence."""
    if groups is not None:
        kept: set[int] = set()
        for g in dict.fromkeys(groups[q] for q in queries):
            rows = [i for i, q in enumerate(queries) if groups[q] == g]
            kept.update(keep_confident([queries[i] for i in rows], [scores[i] for i in rows], confidence))
        return [q for q in queries if q in kept]
    kept_list = [q for q, s in zip(queries, scores, strict=True) if s > confidence]
    if not kept_list:
        kept_list = [queries[max(range(len(queries)), key=lambda i: scores[i])]]
    return kept_list


def recur(
    num_queries: int,
    propose: Callable[[list[int]], P],
    classify: Callable[[list[int], P], Sequence[float]],
    confidence: float,
    max_iterations: int = 10,
    min_iterations: int = 1,
    groups: Sequence[int] | None = None,
) -> Recurrence[P]:
    """Run CaR's loop from all `num_queries` queries.

    propose(queries) returns the proposals of those queries; classify(queries, proposals) returns each query's own
    score. The loop stops when an iteration (at least the `min_iterations`-th; the official loop runs two) keeps every
    query it proposed for; after `max_iterations` iterations it proposes once more for the last kept set (so the
    proposals always belong to the returned queries) and stops. `groups` (a group id per query) keeps queries per
    group (see keep_confident): groups that run side by side, such as CaR's thing and stuff passes; a group whose
    set is stable proposes and scores the same again, so running them in lockstep equals running them apart.
    """
    if num_queries < 1:
        raise ValueError(f"CaR needs at least one query, got {num_queries}")
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be at least 1, got {max_iterations}")
    if groups is not None and len(groups) != num_queries:
        raise ValueError(f"groups has {len(groups)} entries for {num_queries} queries")
    active = list(range(num_queries))
    steps: list[Step] = []
    for _ in range(max_iterations):
        proposals = propose(active)
        scores = [float(s) for s in classify(active, proposals)]
        if len(scores) != len(active):
            raise ValueError(f"classify returned {len(scores)} scores for {len(active)} queries")
        kept = keep_confident(active, scores, confidence, groups)
        steps.append(Step(active, scores, kept))
        if kept == active and len(steps) >= min_iterations:
            return Recurrence(active, proposals, steps, "stable")
        active = kept
    return Recurrence(active, propose(active), steps, "cap")
