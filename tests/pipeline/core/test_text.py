"""One text path: query, index tuning, archive and serve embed a word into one vector, in the model's template set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from archives.prompts import concept_embeddings
from archives.registry import Concept
from pipeline.app.cli import _text_queries
from pipeline.app.serve.config import ServeConfig
from pipeline.app.serve.engine import Engine
from pipeline.core.text import default_template_set, templates, text_embeddings

WORDS = ["heart", "red circle"]


@pytest.mark.parametrize(("ref", "template_count"), [("toy", 4), ("ViT-B-16", 85)])
def test_every_command_embeds_a_word_into_the_same_vector(
    ref: str, template_count: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(ServeConfig(root=tmp_path, model=ref).checked())  # ViT-B-16: random weights, nothing downloaded
    loaded = engine.clip
    served: list[np.ndarray] = []

    def capture(queries: np.ndarray, k: int) -> list:
        served.append(queries)
        return []

    monkeypatch.setattr(engine, "_search", capture)
    engine.text_query(WORDS, 5)  # coarchive serve: /api/query
    typed = _text_queries(loaded, WORDS)  # coarchive query, and coarchive index's recall queries
    template_set = default_template_set(loaded.ref)
    archived = concept_embeddings(loaded, [Concept(w) for w in WORDS], template_set)  # archive, nightly index
    np.testing.assert_array_equal(typed, archived)
    np.testing.assert_array_equal(served[0], archived)
    assert len(templates(template_set)) == template_count  # the model's own set: ReCo's 85 for real CLIPs
    assert np.allclose(np.linalg.norm(archived, axis=1), 1, atol=1e-5)
    if ref != "toy":  # a real CLIP's word is not embedded with the toy model's four templates (the old query path)
        toy_way = text_embeddings(loaded, WORDS, templates("toy")).numpy()
        assert np.abs(archived - toy_way).max() > 1e-3
