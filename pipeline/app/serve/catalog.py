"""What a data root holds, read for the service: concepts, archive runs, archives, banks and run manifests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from archives.archive import IMAGES, ITEMS, QUERY, read_archive
from archives.registry import load_registry
from pipeline.app.serve.errors import DataError
from pipeline.app.serve.paths import NAME, PathRefusedError, check_files, check_name, check_tree, confined, inside

REGISTRY = "concepts.yaml"
DATA_FOLDERS = ("pool", "embeddings", "index", "archives", "banks")  # hold no checkpoints; not searched for them
UNREADABLE = (OSError, ValueError, pa.ArrowException)  # what reading one listed entry may raise (refusals included)


def _folders(root: Path, path: Path) -> list[Path]:
    """Sub-folders of `path` with plain names, sorted; those leading out of the root (symlinks) are left out."""
    if not path.is_dir() or not inside(root, path):
        return []
    return sorted(p for p in path.iterdir() if NAME.fullmatch(p.name) and p.is_dir() and inside(root, p))


def read_json(root: Path, path: Path) -> dict:
    """A JSON object from a file that resolves inside the root; PathRefusedError, OSError or ValueError otherwise."""
    if not inside(root, path):
        raise PathRefusedError(f"{path.name} leads outside the data root")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path.name} is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def _skip(skipped: list[str] | None, root: Path, folder: Path, error: Exception) -> None:
    """Note an entry left out of a listing: its path under the root and why (never the server's own path)."""
    if skipped is None:
        raise error
    reason = str(error).replace(str(root), "<root>") or type(error).__name__
    skipped.append(f"{folder.relative_to(root).as_posix()}: {reason}")


def _summary(root: Path, folder: Path) -> dict:
    query = read_json(root, folder / QUERY)
    check_files(root, folder, ITEMS)
    return {
        "concept": query.get("concept", folder.name),
        "slug": folder.name,
        "items": pq.ParquetFile(folder / ITEMS).metadata.num_rows,
        "context": bool(query.get("context", False)),
        "strength": query.get("strength"),
        "weak": bool(query.get("weak", False)),
        "weak_reason": query.get("weak_reason", ""),
    }


def archive_runs(root: Path, skipped: list[str] | None = None) -> list[dict]:
    """Every archive run (model id, run, its concepts' summaries), in folder order; unreadable archives are left
    out and noted in `skipped`."""
    runs = []
    for model_dir in _folders(root, root / "archives"):
        for run_dir in _folders(root, model_dir):
            concepts = []
            for folder in _folders(root, run_dir):
                if (folder / ITEMS).is_file() and (folder / QUERY).is_file():
                    try:
                        concepts.append(_summary(root, folder))
                    except UNREADABLE as error:
                        _skip(skipped, root, folder, error)
            if concepts:
                runs.append({"model_id": model_dir.name, "run": run_dir.name, "concepts": concepts})
    return runs


def concepts(root: Path, skipped: list[str] | None = None) -> list[dict]:
    """The registry's concepts with the archives holding each (a concept only archived is listed too); an
    unreadable registry or archive is left out and noted in `skipped`."""
    out: dict[str, dict] = {}
    registry = root / REGISTRY
    try:
        if not inside(root, registry):
            raise PathRefusedError(f"{REGISTRY} leads outside the data root")
        for concept in load_registry(registry):
            out[concept.slug] = {**concept.to_dict(), "slug": concept.slug, "context": concept.context, "archives": []}
    except (*UNREADABLE, yaml.YAMLError) as error:
        _skip(skipped, root, registry, error)
    for run in archive_runs(root, skipped):
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
    """An archive's query.json, its items ranked offset+1 .. offset+limit, and its item count; DataError if the
    archive's files cannot be read."""
    try:
        archive = read_archive(folder)
        if not isinstance(archive.query, dict):
            raise ValueError(f"{QUERY} is not a JSON object")
    except (OSError, ValueError, pa.ArrowException) as error:
        raise DataError(f"archive {folder.name!r} could not be read: {_reason(error)}") from None
    rows = archive.items.slice(offset, limit).to_pylist()
    return archive.query, rows, archive.items.num_rows


def banks(root: Path, skipped: list[str] | None = None) -> list[dict]:
    """Every segment bank (model id, run, concepts, encoder, method), in folder order; unreadable banks are left out
    and noted in `skipped`."""
    out = []
    for model_dir in _folders(root, root / "banks"):
        for run_dir in _folders(root, model_dir):
            meta_path = run_dir / "bank.json"
            if not meta_path.is_file():
                continue
            try:
                meta = read_json(root, meta_path)
                check_files(root, run_dir, "bank.safetensors")
            except UNREADABLE as error:
                _skip(skipped, root, run_dir, error)
                continue
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


def runs(root: Path, skipped: list[str] | None = None) -> list[dict]:
    """Runs with a manifest: name and the stages recorded; unreadable manifests are left out and noted in
    `skipped`."""
    out = []
    for run_dir in _folders(root, root / "runs"):
        path = run_dir / "manifest.json"
        if not path.is_file():
            continue
        try:
            manifest = read_json(root, path)
        except UNREADABLE as error:
            _skip(skipped, root, run_dir, error)
            continue
        out.append({"run": run_dir.name, "stages": sorted(manifest.get("stages", {}))})
    return out


def manifest(root: Path, run: str) -> dict:
    """runs/{run}/manifest.json, confined to the root; DataError if it cannot be read."""
    path = confined(root, "runs", check_name(run, "run"), "manifest.json")
    if not path.is_file():
        raise FileNotFoundError(f"no manifest for run {run!r}")
    try:
        return read_json(root, path)
    except (OSError, ValueError) as error:
        raise DataError(f"the manifest of run {run!r} could not be read: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def concept_archive(root: Path, model_id: str, text: str) -> dict | None:
    """The newest readable archive of model `model_id` whose concept is `text` (name or slug, any case), summarised:
    name, run, items, standouts, strength, weak and why; None when no archive holds that concept."""
    wanted = text.strip().lower()
    for run_dir in reversed(_folders(root, root / "archives" / model_id)):
        for folder in _folders(root, run_dir):
            try:
                query = read_json(root, folder / QUERY)
                if wanted not in (folder.name.lower(), str(query.get("concept", "")).strip().lower()):
                    continue
                summary = _summary(root, folder)
            except UNREADABLE:
                continue
            return {
                "name": summary["concept"],
                "run": run_dir.name,
                "items": summary["items"],
                "standouts": query.get("standouts"),
                "strength": summary["strength"],
                "weak": summary["weak"],
                "weak_reason": summary["weak_reason"],
            }
    return None


def checkpoints(root: Path, recognisers: dict, depth: int = 4, visits: int = 5000) -> dict[str, list[str]]:
    """Checkpoint folders under the root by segmenter name (paths relative to the root, sorted): folders that a
    segmenter's recogniser (folder -> bool) accepts and that hold no file leading out of the root. The data folders
    (pool, embeddings, index, archives, banks) are not searched; at most `visits` folders, `depth` levels down."""
    found: dict[str, list[str]] = {name: [] for name in recognisers}
    for parent, folders, _ in os.walk(root):
        here = Path(parent)
        level = len(here.relative_to(root).parts)
        folders[:] = sorted(
            f for f in folders if NAME.fullmatch(f) and level < depth and not (level == 0 and f in DATA_FOLDERS)
        )
        visits -= 1
        if visits < 0:
            break
        for name, recognises in recognisers.items():
            try:
                if level and recognises(here):
                    found[name].append(check_tree(root, here).relative_to(root).as_posix())
            except UNREADABLE:
                continue
    return found
