"""Segment banks: save/load round trip, clear errors, and the restricted import of ReCo's official pickle."""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from segment.bank import META, TENSORS, SegmentBank
from segment.reco_import import import_reco_pickle


def make_bank() -> SegmentBank:
    g = torch.Generator().manual_seed(0)
    return SegmentBank(
        ["sky", "heart", "ring"],
        torch.randn(3, 16, generator=g),
        torch.randn(3, 8, generator=g),
        encoder="timm:vit_small_patch16_224.dino",
        params={"lgc": True, "ce": True, "context": ["sky"], "k": 50},
        provenance={"model": "toy", "run": "r1", "concepts": {"heart": {"images": 50, "seeds": [[1, 2]]}}},
    )


def test_round_trip(tmp_path) -> None:
    bank = make_bank()
    assert torch.allclose(bank.references.norm(dim=1), torch.ones(3))
    bank.save(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [META, TENSORS]
    again = SegmentBank.load(tmp_path / "b")
    assert again.concepts == bank.concepts and again.encoder == bank.encoder and again.method == "reco-cosegment"
    assert torch.equal(again.references, bank.references)
    assert torch.equal(again.text_embeddings, bank.text_embeddings)
    assert again.params == bank.params and again.provenance == bank.provenance
    assert torch.equal(again.reference("ring"), bank.references[2])
    sub = again.subset(["heart", "sky"])
    assert sub.concepts == ["heart", "sky"] and torch.equal(sub.references[1], bank.references[0])


def test_errors(tmp_path) -> None:
    bank = make_bank()
    with pytest.raises(ValueError, match="unknown concept 'tree'"):
        bank.reference("tree")
    with pytest.raises(ValueError, match=r"references must be \(2, d\)"):
        SegmentBank(["a", "b"], torch.randn(3, 4))
    with pytest.raises(ValueError, match="text embeddings"):
        SegmentBank(["a", "b"], torch.randn(2, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="duplicate"):
        SegmentBank(["a", "a"], torch.randn(2, 4))
    with pytest.raises(FileNotFoundError, match=r"no bank\.json"):
        SegmentBank.load(tmp_path / "nothing")
    bank.save(tmp_path / "b")
    meta = json.loads((tmp_path / "b" / META).read_text())
    meta["concepts"] = ["sky", "heart"]
    (tmp_path / "b" / META).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="references must be"):
        SegmentBank.load(tmp_path / "b")
    (tmp_path / "b" / TENSORS).unlink()
    with pytest.raises(FileNotFoundError, match=r"no bank\.safetensors"):
        SegmentBank.load(tmp_path / "b")


def test_import_reco_pickle(tmp_path) -> None:
    path = tmp_path / "reco.pkl"
    refs = {"tree": torch.randn(384), "sky": torch.randn(384), "road": torch.randn(384)}
    with path.open("wb") as f:
        pickle.dump(refs, f)
    bank = import_reco_pickle(path)
    assert bank.concepts == ["tree", "sky", "road"] and bank.dim == 384 and bank.text_embeddings is None
    assert torch.allclose(bank.reference("sky"), refs["sky"] / refs["sky"].norm(), atol=1e-6)
    ordered = OrderedDict(a=np.ones(4, np.float32), b=torch.ones(1, 4))  # numpy values and (1, d) tensors too
    with (tmp_path / "o.pkl").open("wb") as f:
        pickle.dump(ordered, f)
    assert import_reco_pickle(tmp_path / "o.pkl").references.shape == (2, 4)
    torch.save(refs, tmp_path / "zip.pt")  # a torch.save file goes through torch's weights-only loader
    assert import_reco_pickle(tmp_path / "zip.pt").concepts == ["tree", "sky", "road"]
    with (tmp_path / "dims.pkl").open("wb") as f:
        pickle.dump({"a": torch.randn(4), "b": torch.randn(5)}, f)
    with pytest.raises(ValueError, match="different dims"):
        import_reco_pickle(tmp_path / "dims.pkl")
    with pytest.raises(FileNotFoundError):
        import_reco_pickle(tmp_path / "absent.pkl")


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "evil.pkl").open("wb") as f:
        pickle.dump({"tree": Exploit()}, f)
    with pytest.raises(ValueError, match=r"refusing to load global (posix|nt|os)\.system"):
        import_reco_pickle(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()
    with (tmp_path / "text.pkl").open("wb") as f:
        pickle.dump({"tree": "not a tensor"}, f)
    with pytest.raises(ValueError, match="expected a tensor"):
        import_reco_pickle(tmp_path / "text.pkl")
