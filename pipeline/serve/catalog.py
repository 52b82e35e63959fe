"""What a data root holds, read for the service: concepts, archive runs, archives, banks and run manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from archives.archive import IMAGES, ITEMS, QUERY, read_archive
from archives.registry import load_registry
from pipeline.serve.paths import NAME, check_files, check_name, confined, inside

REGISTRY = "concepts.yaml"


def _folders(root: Path, path: Path) -> list[Path]:
    """Sub-folders of `path` with plain names, sorted; those leading out of the root (symlinks) are left out."""
    if not path.is_dir() or not inside(root, path):
        return []
    return sorted(p for p in path.iterdir() if NAME.fullmatch(p.name) and p.is_dir() and inside(root, p))


def _summary(folder: Path) -> dict:
    query = json.loads((folder / QUERY).read_text())
    return {
        "concept": query.get("concept", folder.name),
        "slug": folder.name,
        "items": pq.ParquetFile(folder / ITEMS).metadata.num_rows,
        "context": bool(query.get("context", False)),
        "strength": query.get("strength"),
        "weak": bool(query.get("weak", False)),
        "weak_reason": query.get("weak_reason", ""),
    }


def archive_runs(root: Path) -> list[dict]:
    """Every archive run (model id, run, its concepts' summaries), in folder order."""
    runs = []
    for model_dir in _folders(root, root / "archives"):
        for run_dir in _folders(root, model_dir):
            concepts = [_summary(f) for f in _folders(root, run_dir) if (f / ITEMS).is_file() and (f / QUERY).is_file()]
            if concepts:
                runs.append({"model_id": model_dir.name, "run": run_dir.name, "concepts": concepts})
    return runs


def concepts(root: Path) -> list[dict]:
    """The registry's concepts with the archives holding each (a concept only archived is listed too)."""
    out: dict[str, dict] = {}
    registry = root / REGISTRY
    for concept in load_registry(registry) if inside(root, registry) else []:
        out[concept.slug] = {**concept.to_dict(), "slug": concept.slug, "context": concept.context, "archives": []}
    for run in archive_runs(root):
        for summary in run["concepts"]:
            entry = out.setdefault(
                summary["slug"],
                {"name": summary["concept"], "slug": summary["slug"], "context": summary["context"], "archives": []},
            )
            entry["archives"].append(
                {
                    "model_id": run["model_id"],
                    "run": run["run"],
                    "items": summary["items"],
                    "weak": summary["weak"],
                    "strength": summary["strength"],
                }
            )
    return list(out.values())


def archive_folder(root: Path, model_id: str, run: str, concept: str) -> Path:
    """archives/{model_id}/{run}/{concept}/ confined to the root; FileNotFoundError if it is not an archive."""
    names = (check_name(model_id, "model id"), check_name(run, "run"), check_name(concept, "concept"))
    folder = confined(root, "archives", *names)
    if not (folder / ITEMS).is_file():
        raise FileNotFoundError(f"no archive {concept!r} in run {run!r} of model {model_id!r}")
    return check_files(root, folder, ITEMS, QUERY, IMAGES)


def archive_page(folder: Path, offset: int, limit: int) -> tuple[dict, list[dict], int]:
    """An archive's query.json, its items ranked offset+1 .. offset+limit, and its item count."""
    archive = read_archive(folder)
    rows = archive.items.slice(offset, limit).to_pylist()
    return archive.query, rows, archive.items.num_rows


def banks(root: Path) -> list[dict]:
    """Every segment bank (model id, run, concepts, encoder, method), in folder order."""
    out = []
    for model_dir in _folders(root, root / "banks"):
        for run_dir in _folders(root, model_dir):
            meta_path = run_dir / "bank.json"
            if meta_path.is_file():
                meta = json.loads(meta_path.read_text())
                out.append(
                    {
                        "model_id": model_dir.name,
                        "run": run_dir.name,
                        "concepts": meta.get("concepts", []),
                        "encoder": meta.get("encoder"),
                        "method": meta.get("method"),
                    }
                )
    return out


def bank_folder(root: Path, model_id: str, run: str) -> Path:
    """banks/{model_id}/{run}/ confined to the root; FileNotFoundError if it holds no bank."""
    folder = confined(root, "banks", check_name(model_id, "model id"), check_name(run, "bank"))
    if not (folder / "bank.json").is_file():
        raise FileNotFoundError(f"no segment bank {run!r} for model {model_id!r}")
    return check_files(root, folder, "bank.json", "bank.safetensors")


def runs(root: Path) -> list[dict]:
    """Runs with a manifest: name and the stages recorded."""
    out = []
    for run_dir in _folders(root, root / "runs"):
        path = run_dir / "manifest.json"
        if path.is_file():
            manifest = json.loads(path.read_text())
            out.append({"run": run_dir.name, "stages": sorted(manifest.get("stages", {}))})
    return out


def manifest(root: Path, run: str) -> dict:
    """runs/{run}/manifest.json, confined to the root."""
    path = confined(root, "runs", check_name(run, "run"), "manifest.json")
    if not path.is_file():
        raise FileNotFoundError(f"no manifest for run {run!r}")
    return json.loads(path.read_text())
