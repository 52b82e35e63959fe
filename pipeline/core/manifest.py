"""The run manifest: runs/{run}/manifest.json records config, versions, per-stage counts, timings and failures."""

from __future__ import annotations

import datetime as dt
import importlib.metadata as metadata
import json
import platform

import fsspec

from pipeline.core.io import write_atomically
from pipeline.core.stage import StageReport

PACKAGES = ("coarchive", "torch", "open_clip_torch", "faiss-cpu", "webdataset", "pyarrow", "dask", "img2dataset")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def record_stage(root: str, run: str | None, report: StageReport, config: dict, seconds: float) -> str:
    """Merge one stage's outcome into runs/{run}/manifest.json under the data root; return the manifest's URL."""
    run = run or dt.date.today().isoformat()
    url = f"{root.rstrip('/')}/runs/{run}/manifest.json"
    fs, path = fsspec.core.url_to_fs(url)
    manifest = json.loads(fs.cat_file(path)) if fs.exists(path) else {"run": run, "stages": {}}
    manifest["versions"] = package_versions()
    manifest["stages"][report.stage] = {
        "config": config,
        "seconds": round(seconds, 2),
        "done": len(report.done),
        "skipped": len(report.skipped),
        "counts": report.totals(),
        "per_task": report.stats,
        "failures": report.failed,
    }
    write_atomically(url, lambda f: f.write(json.dumps(manifest, indent=2, sort_keys=True).encode()))
    return url
