"""CaR's settings: thresholds, visual prompts, recurrence cap, background queries, and the per-benchmark presets."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from segment.car.classifier import LAYERS
from segment.car.gradcam import check_cam_style
from segment.car.visual_prompts import BLUR_SIGMA, check_prompts

# The background queries of CaR's CAM softmax (they compete with the concepts but are never output).
CAR_BACKGROUND = (
    "ground", "land", "grass", "tree", "building", "wall", "sky", "lake", "water", "river", "sea", "railway",
    "railroad", "helmet", "cloud", "house", "mountain", "ocean", "road", "rock", "street", "valley", "bridge",
)  # fmt: skip
CAM_TEMPLATES = ("a clean origami {}.",)
TOY_STUFF = ("grass", "water", "sand", "brick", "sky")  # the toy world's stuff classes (its words, not imported)
BACKGROUND_CONCEPT = "background"  # a concept of this name receives the background channel instead of a CAM


@dataclass(frozen=True)
class CarSettings:
    """Thresholds (mask / confidence / CAM box), prompts and the rest; defaults are CaR's VOC ones."""

    mask_threshold: float = 0.4
    confidence_threshold: float = 0.6
    box_threshold: float = 0.4
    prompts: tuple[str, ...] = ("circle", "blur")
    max_iterations: int = 10
    logit_scale: float | None = None  # None: the CLIP's own learned scale (100 for OpenAI's CLIPs)
    attention_layers: int = 8
    bg_factor: float = 1.0
    blur_sigma: float = BLUR_SIGMA
    classifier_layer: str = "final"
    bank_weight: float = 1.0  # bank evidence counts as this many times all the text templates together
    bank_temperature: float = 100.0
    sam_iou: float = 0.9
    cam_style: str = "paper"  # "official": the official code's CAM layer and pooling (segment/car/gradcam.py)
    # the official loop: the first iteration's CAM embeds the bare concept names (later ones the CAM templates), and
    # at least two iterations run
    first_stage_names: bool = False
    # concepts segmented in a separate stuff pass, as the official code does on Context and ADE: its CAM competes
    # with the thing concepts asked (not the background words), its classifier only with the other stuff concepts;
    # things are painted over stuff (segment/car/layers.py). Empty: one pass for every concept
    stuff: tuple[str, ...] = ()
    stuff_prompts: tuple[str, ...] | None = None  # the stuff pass's visual prompts; None: `prompts`
    stuff_bg_factor: float = 1.0  # exponent of the stuff pass's background channel
    # the CAM's background queries in the (thing) pass; None: CaR's CAR_BACKGROUND for real CLIPs, none for the toy
    background: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("mask_threshold", "confidence_threshold", "box_threshold", "sam_iou"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        object.__setattr__(self, "prompts", check_prompts(self.prompts))
        if self.stuff_prompts is not None:
            object.__setattr__(self, "stuff_prompts", check_prompts(self.stuff_prompts))
        for name in ("stuff", "background"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _words(name, value))
        if not isinstance(self.max_iterations, int) or self.max_iterations < 1:
            raise ValueError(f"max_iterations must be an integer of at least 1, got {self.max_iterations!r}")
        if not isinstance(self.attention_layers, int) or self.attention_layers < 1:
            raise ValueError(f"attention_layers must be an integer of at least 1, got {self.attention_layers!r}")
        for name in ("logit_scale", "blur_sigma", "bank_temperature", "bg_factor", "stuff_bg_factor"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or float(value) <= 0):
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if float(self.bank_weight) < 0:
            raise ValueError(f"bank_weight must be non-negative, got {self.bank_weight!r}")
        check_cam_style(self.cam_style)
        if not isinstance(self.first_stage_names, bool):
            raise ValueError(f"first_stage_names must be True or False, got {self.first_stage_names!r}")
        if self.classifier_layer not in LAYERS:
            raise ValueError(f"unknown classifier_layer {self.classifier_layer!r}; choose from {', '.join(LAYERS)}")

    def with_options(self, **options: Any) -> CarSettings:
        """A copy with some fields replaced; ValueError naming an unknown one."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown CaR settings {unknown}; known: {sorted(known)}")
        return replace(self, **options)


def _words(name: str, value: Any) -> tuple[str, ...]:
    """A tuple of non-empty strings from a list or tuple; ValueError otherwise."""
    if isinstance(value, str) or not all(isinstance(w, str) and w.strip() for w in value):
        raise ValueError(f"{name} must be a list of non-empty words, got {value!r}")
    return tuple(value)


PRESETS = {  # CaR's per-benchmark thresholds (mask / confidence / CAM box) and prompts
    "voc": CarSettings(0.4, 0.6, 0.4, ("circle", "blur")),
    "coco-object": CarSettings(0.5, 0.3, 0.5, ("blur", "gray")),
    "context": CarSettings(0.6, 0.25, 0.4, ("circle", "blur"), stuff_prompts=("blur", "gray")),
    "ade20k": CarSettings(0.6, 0.25, 0.7, ("gray", "blur"), stuff_prompts=("gray", "blur")),
    # the toy world, as a Context-like split: its stuff in a stuff pass, the stuff words as the thing pass's
    # background queries (as CaR's background words are stuff words), 2 of the toy ViT's 4 blocks for the affinity
    # (CaR: 8 of 12); tuned on the tuning split of python -m pipeline.toy.car_tuning, never on benchmark scenes
    "toy": CarSettings(
        0.3,
        0.2,
        0.4,
        ("circle", "blur"),
        attention_layers=2,
        bg_factor=2.0,
        stuff=TOY_STUFF,
        stuff_prompts=("gray",),
        background=TOY_STUFF,
    ),
}


def preset(name: str) -> CarSettings:
    """The settings CaR used on a benchmark ('voc', 'coco-object', 'context', 'ade20k'), or 'toy'."""
    if name not in PRESETS:
        raise ValueError(f"unknown CaR preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
