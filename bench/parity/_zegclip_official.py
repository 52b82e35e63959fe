"""The official ZegCLIP modules, imported by path from a scratch checkout, with stand-ins for what they need and
cannot have here (mmcv 1.x, mmseg 0.x, matplotlib).

Nothing of the official code is copied: its files are executed from the checkout. `STOOD_IN` lists every symbol
replaced, and what the replacement does; docs/parity/zegclip.md repeats it.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

STOOD_IN = {
    "mmseg.models.builder (BACKBONES, HEADS, SEGMENTORS, LOSSES, build_*)": "a name -> class registry; build(cfg) "
    "pops 'type' and calls the class with the rest",
    "mmseg.models.segmentors.encoder_decoder.EncoderDecoder": "builds backbone and decode head from their configs, "
    "keeps test_cfg; inference() = slide_inference + softmax over classes, simple_test() = its argmax (mmseg 0.x)",
    "mmseg.models.decode_heads.decode_head.BaseDecodeHead": "keeps in_channels, channels, num_classes, ignore_index "
    "255, align_corners False; builds loss_decode from its config and a 1x1 conv_seg (deleted by the head)",
    "mmseg.ops.resize": "torch.nn.functional.interpolate",
    "mmcv.runner.force_fp32 / auto_fp16": "decorators that change nothing (no fp16 here)",
    "mmseg.core.add_prefix, mmseg.models.losses.accuracy, mmcv.cnn.ConvModule, mmseg.ops.Upsample, "
    "mmseg.models.backbones.ResNet / VisionTransformer, BaseSegmentor": "unused by the code paths run; empty stand-ins",
    "matplotlib, matplotlib.pyplot": "not installed; imported but unused by the code paths run",
    "timm.models.layers.drop": "timm.layers.drop (timm 1.x no longer re-exports the module there)",
    "models/__init__.py": "not executed (it imports the mmseg datasets); the four module files are loaded by path",
}


class Registry:
    """A name -> class table with mmcv's `register_module()` decorator and `build(cfg)`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.classes: dict[str, type] = {}

    def register_module(self, name: str | None = None):
        """Decorator registering a class under its own name."""

        def add(cls: type) -> type:
            self.classes[name or cls.__name__] = cls
            return cls

        return add

    def build(self, cfg: dict):
        """Instantiate the class named by cfg['type'] with the other keys."""
        args = dict(cfg)
        return self.classes[args.pop("type")](**args)


def _identity_decorator(*_args, **_kwargs):
    """mmcv's force_fp32 / auto_fp16 stand-in: a decorator factory that returns the function unchanged."""
    return lambda function: function


def _module(name: str, **attrs) -> types.ModuleType:
    """A fresh module object `name` holding `attrs`."""
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _standin_modules() -> dict[str, types.ModuleType]:
    """The fake mmcv / mmseg / matplotlib modules, by import name."""
    backbones, heads, segmentors, losses = (Registry(n) for n in ("backbone", "head", "segmentor", "loss"))
    builder = _module(
        "mmseg.models.builder",
        BACKBONES=backbones,
        HEADS=heads,
        SEGMENTORS=segmentors,
        LOSSES=losses,
        build_backbone=backbones.build,
        build_head=heads.build,
        build_loss=losses.build,
    )

    class BaseSegmentor(nn.Module):
        """Unused stand-in."""

    class EncoderDecoder(BaseSegmentor):
        """mmseg 0.x EncoderDecoder, reduced to what ZegCLIP inference uses."""

        def __init__(self, backbone, decode_head, neck=None, auxiliary_head=None, train_cfg=None, test_cfg=None,
                     pretrained=None, init_cfg=None):  # fmt: skip
            super().__init__()
            self.backbone = builder.build_backbone(backbone)
            self._init_decode_head(decode_head)
            self.train_cfg = train_cfg
            self.test_cfg = SimpleNamespace(**(test_cfg or {}))

        def inference(self, img, img_meta, rescale):
            """Slide inference, then softmax over classes (mmseg 0.x)."""
            return F.softmax(self.slide_inference(img, img_meta, rescale), dim=1)

        def simple_test(self, img, img_meta, rescale=False):
            """Label maps: the argmax of `inference`."""
            return self.inference(img, img_meta, rescale).argmax(dim=1)

    class BaseDecodeHead(nn.Module):
        """mmseg 0.x BaseDecodeHead: the attributes and modules ATMSingleHeadSeg reads or deletes."""

        def __init__(self, in_channels, channels, *, num_classes, dropout_ratio=0.1, conv_cfg=None, norm_cfg=None,
                     act_cfg=None, in_index=-1, input_transform=None, loss_decode=None, ignore_index=255,
                     sampler=None, align_corners=False, init_cfg=None):  # fmt: skip
            super().__init__()
            self.in_channels, self.channels, self.num_classes = in_channels, channels, num_classes
            self.ignore_index, self.align_corners, self.in_index = ignore_index, align_corners, in_index
            self.loss_decode = losses.build(loss_decode) if loss_decode else None
            self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
            self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else None

    class Unused(nn.Module):
        """A symbol imported but never used on the code paths run."""

    def resize(input, size=None, scale_factor=None, mode="nearest", align_corners=None, warning=True):
        return F.interpolate(input, size, scale_factor, mode, align_corners)

    mods = {
        "mmcv": _module("mmcv"),
        "mmcv.cnn": _module("mmcv.cnn", ConvModule=Unused),
        "mmcv.runner": _module("mmcv.runner", auto_fp16=_identity_decorator, force_fp32=_identity_decorator),
        "mmseg": _module("mmseg"),
        "mmseg.core": _module("mmseg.core", add_prefix=lambda d, prefix: {f"{prefix}.{k}": v for k, v in d.items()}),
        "mmseg.ops": _module("mmseg.ops", Upsample=Unused, resize=resize),
        "mmseg.models": _module("mmseg.models", builder=builder),
        "mmseg.models.builder": builder,
        "mmseg.models.backbones": _module("mmseg.models.backbones", ResNet=Unused, VisionTransformer=Unused),
        "mmseg.models.losses": _module("mmseg.models.losses", accuracy=lambda *a, **k: torch.zeros(())),
        "mmseg.models.decode_heads": _module("mmseg.models.decode_heads"),
        "mmseg.models.decode_heads.decode_head": _module(
            "mmseg.models.decode_heads.decode_head", BaseDecodeHead=BaseDecodeHead
        ),
        "mmseg.models.segmentors": _module("mmseg.models.segmentors"),
        "mmseg.models.segmentors.base": _module("mmseg.models.segmentors.base", BaseSegmentor=BaseSegmentor),
        "mmseg.models.segmentors.encoder_decoder": _module(
            "mmseg.models.segmentors.encoder_decoder", EncoderDecoder=EncoderDecoder
        ),
    }
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        mods["matplotlib"] = _module("matplotlib")
        mods["matplotlib.pyplot"] = _module("matplotlib.pyplot", text=None)
    return mods


OFFICIAL_MODULES = (
    "models.backbone.img_encoder",
    "models.backbone.text_encoder",
    "models.losses.atm_loss",
    "models.decode_heads.decode_seg",
    "models.segmentor.zegclip",
)


def load_official(checkout: Path | str) -> SimpleNamespace:
    """Import the official backbone, text encoder, loss, decode head and segmentor modules from `checkout` (its
    `models/` folder) with the stand-ins installed; returns them and the stand-in registries."""
    root = Path(checkout).resolve()
    missing = [m for m in OFFICIAL_MODULES if not (root / (m.replace(".", "/") + ".py")).is_file()]
    if missing:
        raise FileNotFoundError(f"{root} is not a ZegCLIP checkout (no {missing[0].replace('.', '/')}.py)")
    for name, module in _standin_modules().items():
        sys.modules.setdefault(name, module)
    import timm.layers.drop
    import timm.models.layers

    if not hasattr(timm.models.layers, "drop"):
        timm.models.layers.drop = timm.layers.drop
    package = _module("models")
    package.__path__ = [str(root / "models")]  # a package whose __init__ (dataset imports) never runs
    sys.modules["models"] = package
    loaded = {name.rsplit(".", 1)[1]: importlib.import_module(name) for name in OFFICIAL_MODULES}
    return SimpleNamespace(**loaded, builder=sys.modules["mmseg.models.builder"], root=root)


def lift_fp32_layernorm(official: SimpleNamespace) -> None:
    """Let the official LayerNorm subclass run in the input's dtype: its cast to float32 (for fp16) makes float64
    inputs fail (mixed dtypes); on float32 inputs the cast changes nothing."""
    official.img_encoder.LayerNorm.forward = nn.LayerNorm.forward
