"""The recurrence with a stub classifier whose outcomes are scripted: stopping, the keep-best rule, the cap."""

from __future__ import annotations

import pytest

from segment.car.recurrence import keep_confident, recur


def _scripted(outcomes: list[dict[int, float]]):
    """propose records the sets it saw; classify returns the scripted score of each query at that call."""
    proposed: list[list[int]] = []

    def propose(queries: list[int]) -> str:
        proposed.append(list(queries))
        return f"proposals {queries}"

    def classify(queries: list[int], proposals: str) -> list[float]:
        assert proposals == f"proposals {queries}"
        scores = outcomes[min(len(proposed) - 1, len(outcomes) - 1)]
        return [scores.get(q, 0.0) for q in queries]

    return propose, classify, proposed


def test_stops_when_the_query_set_stops_changing() -> None:
    propose, classify, proposed = _scripted(
        [{0: 0.9, 1: 0.1, 2: 0.8, 3: 0.7}, {0: 0.9, 2: 0.65, 3: 0.2}, {0: 0.7, 2: 0.61}]
    )
    result = recur(4, propose, classify, confidence=0.6, max_iterations=10)
    assert proposed == [[0, 1, 2, 3], [0, 2, 3], [0, 2]]
    assert [s.kept for s in result.steps] == [[0, 2, 3], [0, 2], [0, 2]]
    assert result.queries == [0, 2] and result.proposals == "proposals [0, 2]"
    assert result.stopped == "stable" and len(result.steps) == 3


def test_keeps_the_best_query_when_none_passes() -> None:
    propose, classify, proposed = _scripted([{0: 0.2, 1: 0.5, 2: 0.1}, {1: 0.3}])
    result = recur(3, propose, classify, confidence=0.6)
    assert proposed == [[0, 1, 2], [1]]
    assert result.queries == [1] and result.stopped == "stable"
    assert keep_confident([4, 7], [0.1, 0.1], 0.5) == [4]  # ties: the first
    assert keep_confident([4, 7], [0.6, 0.61], 0.6) == [7]  # strictly above


def test_respects_the_cap_and_proposes_for_the_last_kept_set() -> None:
    # each call drops the last query: never stable within 2 iterations
    propose, classify, proposed = _scripted([{0: 0.9, 1: 0.9, 2: 0.9, 3: 0.1}, {0: 0.9, 1: 0.9, 2: 0.1}])
    result = recur(4, propose, classify, confidence=0.6, max_iterations=2)
    assert proposed == [[0, 1, 2, 3], [0, 1, 2], [0, 1]]
    assert result.stopped == "cap" and result.queries == [0, 1] and result.proposals == "proposals [0, 1]"
    assert len(result.steps) == 2
    once = recur(4, *_scripted([{0: 0.9, 1: 0.9, 2: 0.9, 3: 0.9}])[:2], confidence=0.6, max_iterations=1)
    assert once.stopped == "stable" and once.queries == [0, 1, 2, 3]


def test_bad_arguments_raise() -> None:
    propose, classify, _ = _scripted([{0: 1.0}])
    with pytest.raises(ValueError, match="max_iterations"):
        recur(1, propose, classify, 0.5, max_iterations=0)
    with pytest.raises(ValueError, match="at least one query"):
        recur(0, propose, classify, 0.5)
    with pytest.raises(ValueError, match="scores"):
        recur(2, propose, lambda q, p: [1.0], 0.5)
