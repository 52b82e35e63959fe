"""ADE20K scene parsing (ADEChallengeData2016): images/ and annotations/ of training or validation, 150 classes."""

from __future__ import annotations

from pathlib import Path

from segment.datasets.base import SegDataset, check_split, reduce_zero_table, require_dir

ADE20K_CLASSES = [  # mask value k (1..150) is class k - 1; 0 = unlabelled
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel",
    "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane",
    "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
    "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool",
    "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture",
    "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
]  # fmt: skip
SPLITS = {"train": "training", "training": "training", "val": "validation", "validation": "validation"}


def open_ade20k(root: Path | str, split: str = "val") -> SegDataset:
    """ADE20K under `root` (ADEChallengeData2016/ itself, or a folder holding it)."""
    root = Path(root)
    if (root / "ADEChallengeData2016").is_dir():
        root = root / "ADEChallengeData2016"
    folder = SPLITS[check_split("ade20k", split, list(SPLITS))]
    images = require_dir(root / "images" / folder, "ADE20K images")
    masks = require_dir(root / "annotations" / folder, "ADE20K annotations")
    items = [(p.stem, images / f"{p.stem}.jpg", p) for p in sorted(masks.glob("*.png"))]
    return SegDataset("ade20k", ADE20K_CLASSES, items, reduce_zero_table(len(ADE20K_CLASSES)), split)
