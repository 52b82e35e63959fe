"""Run the official ReCo code from a scratch checkout of NoelShin/reco on the parity inputs, with small stand-ins.

Nothing of the official code is copied: its modules are imported from the checkout. What cannot run here is stood
in, each one listed (docs/parity/reco.md repeats the list):
- `clip`, OpenAI's package (imported by utils/extract_text_embeddings.py): a module whose `tokenize` is open_clip's
  and whose `load` refuses; nothing here embeds text with it.
- `networks.reco.get_model`: hands out the tiny official DistilledVisionTransformer built here (instead of
  downloading DeiT-S/16-SIN) and a DenseCLIP stand-in that returns each image's fixed DenseCLIP features (the
  official DenseCLIP is ResNet-only and built on mmcv).
- `networks.reco.prompt_engineering`: returns the fixed text embeddings (instead of loading CLIP RN50x16).
- the retrieval dataset (ImageNet1KDataset): `set_category` and `[0]` return each concept's fixed archive.
- `networks.reco.os`: the module calls os but imports it only under `__main__`.
- `networks.reco.torch`: a view of torch whose `device(...)` answers cpu (ReCo.__init__ hard-codes cuda:0).
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import types
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.parity import _reco_inputs as inp

NEEDED = ("networks/reco.py", "networks/vit/distilled_vision_transformer.py", "utils/crf.py")


class _CpuTorch(types.ModuleType):
    """torch, except that torch.device(...) is the CPU."""

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    @staticmethod
    def device(*_args: Any, **_kwargs: Any) -> torch.device:
        return torch.device("cpu")


def _clip_stand_in() -> types.ModuleType:
    """The `clip` module the official text utilities import."""
    import open_clip

    module = types.ModuleType("clip")
    module.tokenize = open_clip.tokenize

    def load(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the parity run stands in for CLIP; clip.load must not be reached")

    module.load = load
    return module


def load_official(path: Path | str) -> types.SimpleNamespace:
    """Import networks.reco, the distilled ViT and utils.crf from a checkout; FileNotFoundError if it is not one."""
    root = Path(path).expanduser().resolve()
    missing = [n for n in NEEDED if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(f"not a checkout of NoelShin/reco (no {', '.join(missing)}): {root}")
    sys.modules.setdefault("clip", _clip_stand_in())
    for name in ("networks", "utils"):  # the checkout's own top-level packages, imported fresh from it
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
    sys.path.insert(0, str(root))
    try:
        reco = importlib.import_module("networks.reco")
        vit = importlib.import_module("networks.vit.distilled_vision_transformer")
        crf = importlib.import_module("utils.crf")
    finally:
        sys.path.remove(str(root))
    reco.os = importlib.import_module("os")
    reco.torch = _CpuTorch("torch")
    return types.SimpleNamespace(root=root, reco=reco, vit=vit, crf=crf)


def official_encoder(ns: types.SimpleNamespace) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The official DistilledVisionTransformer at the tiny shape, with the seeded weights loaded strictly."""
    t = inp.TINY
    model = ns.vit.DistilledVisionTransformer(
        img_size=[t["img_size"]],
        patch_size=t["patch_size"],
        embed_dim=t["embed_dim"],
        depth=t["depth"],
        num_heads=t["num_heads"],
        mlp_ratio=t["mlp_ratio"],
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_classes=0,
    )
    state = inp.encoder_state({k: tuple(v.shape) for k, v in model.state_dict().items()})
    model.load_state_dict(state, strict=True)
    return model.eval(), state


class Lookup(torch.nn.Module):
    """A network stand-in: each input image's fixed features (B, C, h, w), found by the bytes of its pixels."""

    def __init__(self, table: dict[str, torch.Tensor], images: list[np.ndarray]) -> None:
        super().__init__()
        self.table = table
        self.keys = {inp.checksum(inp.pixels([im])[0]): inp.image_key(im) for im in images}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.table[self.keys[inp.checksum(p)]].permute(2, 0, 1) for p in x])


class _Archives(torch.utils.data.Dataset):
    """The retrieval dataset: the fixed archive of whichever concept was set last."""

    def __init__(self) -> None:
        self.category: str | None = None

    def set_category(self, category: str) -> None:
        self.category = category

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict:
        return {"imgs": inp.pixels(inp.archive_images(self.category))}


@torch.no_grad()
def run_official(
    ns: types.SimpleNamespace, encoder: torch.nn.Module, clip: dict[str, torch.Tensor], text: dict[str, torch.Tensor]
) -> dict:
    """Build the official ReCo (context concepts first) and segment the query image; every stage's output.

    Returns per concept the pixel weights (LGC x CE) and seeds co-segmentation saw, the reference, the LGC weights
    alone; for the query image the product maps `dt`, their argmax, the CRF's probabilities and argmax.
    """
    images = [im for c in inp.CONCEPTS for im in inp.archive_images(c)] + [inp.query_image()]
    archives = _Archives()
    nets = {"encoder": encoder, "denseclip": Lookup(clip, images)}
    ns.reco.get_model = lambda name: nets[name]
    ns.reco.prompt_engineering = lambda categories, model_name: {c: text[c] for c in categories}
    out: dict[str, Any] = {"weights": {}, "seeds": {}, "reference": {}, "lgc": {}}
    model = ns.reco.ReCo.__new__(ns.reco.ReCo)
    method = model._get_reference_image_feature

    def spy(features: torch.Tensor, weights: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        ref, seed_features = method(features=features, weights=weights, return_seed_features=True)
        seeds = [(features[i] == s[:, None, None]).all(0).nonzero()[0].tolist() for i, s in enumerate(seed_features)]
        c = archives.category
        out["weights"][c], out["seeds"][c], out["reference"][c] = weights.clone(), np.array(seeds), ref.clone()
        return ref

    model._get_reference_image_feature = spy
    with tempfile.TemporaryDirectory() as tmp:
        ns.reco.ReCo.__init__(
            model,
            k=inp.K,
            index_dataset=archives,
            encoder_arch="encoder",
            dense_clip_arch="denseclip",
            categories=list(inp.TARGETS),
            context_categories=list(inp.CONTEXT),
            device=torch.device("cpu"),
            p_category_to_img_feature=f"{tmp}/category_to_img_feature.pkl",
        )
    for c in inp.CONCEPTS:
        imgs = inp.pixels(inp.archive_images(c))
        out["lgc"][c] = model._get_text_attention(imgs, text_feature=text[c], output_size=(inp.GRID, inp.GRID))
    query = inp.pixels([inp.query_image()])
    dt = model(query, device=torch.device("cpu"))[0]  # (C, H, W)
    probs = ns.crf.dense_crf(query[0], torch.log_softmax(dt[None], dim=1)[0])  # as eval.py's batched_crf
    out.update(dt=dt, labels=dt.argmax(0).numpy(), crf_probs=probs, crf_labels=probs.argmax(0))
    return out
