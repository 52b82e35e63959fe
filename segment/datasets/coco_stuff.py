"""COCO-Stuff 164k as mmsegmentation converts it: images/{split}2017, annotations/{split}2017/*_labelTrainIds.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segment.datasets.base import IGNORE, SegDataset, check_split, identity_table, require_dir

COCO_THINGS = [  # the 80 COCO object classes, train ids 0..79
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
]  # fmt: skip
COCO_STUFF = [  # the 91 stuff classes, train ids 80..170
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff",
    "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood",
    "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house",
    "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper",
    "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river",
    "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel",
    "tree", "vegetable", "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile",
    "wall-wood", "water-other", "waterdrops", "window-blind", "window-other", "wood",
]  # fmt: skip
COCO_STUFF_CLASSES = COCO_THINGS + COCO_STUFF  # 171

# The official COCO-Stuff hierarchy: 12 thing and 15 stuff supercategories (the 27 classes of COCO-Stuff-27),
# in the order the unsupervised-segmentation literature numbers them.
COARSE_GROUPS: dict[str, list[str]] = {
    "electronic": ["tv", "laptop", "mouse", "remote", "keyboard", "cell phone"],
    "appliance": ["microwave", "oven", "toaster", "sink", "refrigerator"],
    "food-things": [
        "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake",
    ],
    "furniture-things": ["chair", "couch", "potted plant", "bed", "dining table", "toilet"],
    "indoor": ["book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"],
    "kitchen": ["bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"],
    "accessory": ["backpack", "umbrella", "handbag", "tie", "suitcase"],
    "animal": ["bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"],
    "outdoor": ["traffic light", "fire hydrant", "stop sign", "parking meter", "bench"],
    "person": ["person"],
    "sports": [
        "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
        "surfboard", "tennis racket",
    ],
    "vehicle": ["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"],
    "ceiling": ["ceiling-other", "ceiling-tile"],
    "floor": ["carpet", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood"],
    "food-stuff": ["food-other", "fruit", "salad", "vegetable"],
    "furniture-stuff": [
        "cabinet", "counter", "cupboard", "desk-stuff", "door-stuff", "furniture-other", "light", "mirror-stuff",
        "shelf", "stairs", "table",
    ],
    "rawmaterial": ["cardboard", "metal", "paper", "plastic"],
    "textile": [
        "banner", "blanket", "cloth", "clothes", "curtain", "mat", "napkin", "pillow", "rug", "textile-other",
        "towel",
    ],
    "wall": ["wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood"],
    "window": ["window-blind", "window-other"],
    "building": ["bridge", "building-other", "house", "roof", "skyscraper", "tent"],
    "ground": [
        "dirt", "gravel", "ground-other", "mud", "pavement", "platform", "playingfield", "railroad", "road", "sand",
        "snow",
    ],
    "plant": ["branch", "bush", "flower", "grass", "leaves", "moss", "plant-other", "straw", "tree"],
    "sky": ["clouds", "sky-other"],
    "solid": ["hill", "mountain", "rock", "solid-other", "stone", "wood"],
    "structural": ["cage", "fence", "net", "railing", "structural-other"],
    "water": ["fog", "river", "sea", "water-other", "waterdrops"],
}  # fmt: skip
COARSE_CLASSES = list(COARSE_GROUPS)  # 27
SPLITS = ("train", "val")


def coarse_table() -> np.ndarray:
    """(256,) uint8 label table: a fine train id (0..170) -> its coarse class (0..26); anything else -> ignore."""
    coarse_of = {fine: index for index, fines in enumerate(COARSE_GROUPS.values()) for fine in fines}
    table = np.full(256, IGNORE, np.uint8)
    for fine_id, fine in enumerate(COCO_STUFF_CLASSES):
        table[fine_id] = coarse_of[fine]
    return table


def coco_items(root: Path, split: str, suffix: str, kind: str) -> list[tuple[str, Path, Path]]:
    """Items of the mmseg COCO layout: images/{split}2017/X.jpg beside annotations/.../X{suffix}."""
    check_split(kind, split, SPLITS)
    for candidate in (root / "coco_stuff164k", root / "coco"):
        if (candidate / "images").is_dir():
            root = candidate
            break
    require_dir(root, "COCO")
    images = require_dir(root / "images" / f"{split}2017", "COCO images")
    masks = require_dir(root / "annotations" / f"{split}2017", "COCO annotations")
    names = sorted(p.name[: -len(suffix)] for p in masks.glob(f"*{suffix}"))
    return [(n, images / f"{n}.jpg", masks / f"{n}{suffix}") for n in names]


def open_coco_stuff(root: Path | str, split: str = "val", coarse: bool = False) -> SegDataset:
    """COCO-Stuff with its 171 classes, or with the 27 coarse classes of the official hierarchy."""
    items = coco_items(Path(root), split, "_labelTrainIds.png", "coco-stuff")
    if coarse:
        return SegDataset("coco-stuff27", COARSE_CLASSES, items, coarse_table(), split)
    return SegDataset("coco-stuff", COCO_STUFF_CLASSES, items, identity_table(len(COCO_STUFF_CLASSES)), split)
