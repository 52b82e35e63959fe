"""The toy world's benchmark: images/{id}.jpg, masks/{id}.png (class indices), classes.txt, splits/{split}.txt."""

from __future__ import annotations

from pathlib import Path

from segment.datasets.base import SegDataset, read_id_list, require_dir


def open_toy(root: Path | str, split: str = "val") -> SegDataset:
    """The toy benchmark under `root` (a toy world folder, or its benchmark/ folder itself)."""
    root = Path(root)
    bench = root / "benchmark" if (root / "benchmark").is_dir() else root
    require_dir(bench, "toy benchmark")
    require_dir(bench / "images", "toy benchmark images")
    require_dir(bench / "masks", "toy benchmark masks")
    classes_file = bench / "classes.txt"
    if not classes_file.is_file():
        raise FileNotFoundError(f"missing class list {classes_file}")
    classes = [line.strip() for line in classes_file.read_text().splitlines() if line.strip()]
    splits = sorted(p.stem for p in (bench / "splits").glob("*.txt"))
    if split not in splits:
        raise ValueError(f"unknown split {split!r} for the toy benchmark {bench}; found: {', '.join(splits) or 'none'}")
    ids = read_id_list(bench / "splits" / f"{split}.txt")
    items = [(i, bench / "images" / f"{i}.jpg", bench / "masks" / f"{i}.png") for i in ids]
    return SegDataset("toy", classes, items, split=split)
