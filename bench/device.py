"""One device script: the GPU numbers of issue 19 in one run that writes one JSON file.

usage: python -m bench.device --out device.json                  # on a GPU machine (about 8 minutes on one H100)
       python -m bench.device --tiny --device cpu --out d.json   # the CPU check the test suite runs (seconds)
Parts, each timed on its own and recorded even when another fails (a failed part is {"error": ...}):
- embed: ViT-B/16 (random init) end to end from tar shards of 256-px JPEGs (coarchive's embed stage: streaming
  loader, JPEG decode on the GPU where it can, fp16 autocast on CUDA), images/s;
- index: a 10M x 512 index built on the GPU and on the CPU from the same vectors: build seconds, peak memory,
  recall@10 and recall@1000 against exact search (bench.index_build's vectors and queries);
- zegclip: ZegCLIP's forward pass at 512 px (ViT-B/16, random init, 20 classes), images/s;
- car: CaR's batched segmenter (ViT-B/16, random init, 10 concepts), seconds per image.
The JSON is rewritten after every part, so a run cut short keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

FULL = {"images": 20_000, "per_shard": 2_000, "image_size": 256, "batch_size": 512, "loader_workers": 12}
FULL |= {"vectors": 10_000_000, "dim": 512, "max_memory": "4G", "zegclip_size": 512, "zegclip_batch": 8}
FULL |= {"car_images": 4, "car_concepts": 10}
TINY = {"images": 24, "per_shard": 12, "image_size": 64, "batch_size": 8, "loader_workers": 0}
TINY |= {"vectors": 4_000, "dim": 32, "max_memory": "64M", "zegclip_size": 64, "zegclip_batch": 1}
TINY |= {"car_images": 1, "car_concepts": 2}


def machine(device: str) -> dict:
    """What the numbers were measured on."""
    info = {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        import faiss

        info["faiss"] = faiss.__version__
        info["faiss_gpus"] = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    except ImportError:
        info["faiss"] = None
    return info


def embed_part(work: Path, sizes: dict, device: str, arch: str) -> dict:
    """ViT-B/16 (random init) embeds a pool of toy JPEG shards end to end; images/s of the stage."""
    from pipeline.core.executors import LocalExecutor
    from pipeline.core.models import ModelRef
    from pipeline.core.stage import run_stage
    from pipeline.pool.embed import EmbedStage, _worker_model
    from pipeline.toy.export import generate_toy_world
    from pipeline.toy.world import WorldSpec

    data = work / "embed"
    spec = WorldSpec(image_size=sizes["image_size"])
    generate_toy_world(
        data, spec, pool_size=sizes["images"], shard_size=sizes["per_shard"], bench_size=0, progress=False
    )
    stage = EmbedStage(
        str(data / "pool"),
        str(data),
        ModelRef(arch),
        batch_size=sizes["batch_size"],
        device=device,
        loader_workers=sizes["loader_workers"],
    )
    start = time.perf_counter()
    _worker_model(stage.model, stage.device)  # model creation is not the stage's throughput
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    report = run_stage(stage, LocalExecutor(), progress=False)
    seconds = time.perf_counter() - start
    if report.failed:
        raise RuntimeError(f"embed failed on shards {report.failed}")
    embedded = report.totals().get("embedded", 0)
    return {
        "model": f"{arch} (random init)",
        "images": embedded,
        "image_px": sizes["image_size"],
        "batch_size": sizes["batch_size"],
        "loader_workers": sizes["loader_workers"],
        "model_load_s": round(load_s, 2),
        "seconds": round(seconds, 2),
        "images_per_s": round(embedded / seconds, 1),
    }


def index_part(work: Path, sizes: dict, devices: list[str]) -> dict:
    """The same vectors indexed on each device in its own measured process; recall against exact search."""
    from bench.index_build import recall_and_latency, write_vectors
    from bench.peakmem import last_json, run_measured

    base = work / "index"
    base.mkdir(parents=True, exist_ok=True)
    tune, queries = np.split(write_vectors(base, sizes["vectors"], sizes["dim"], peer=False), 2)
    np.save(base / "tune_queries.npy", tune)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    out = {"vectors": sizes["vectors"], "dim": sizes["dim"], "max_memory": sizes["max_memory"]}
    for device in devices:
        folder = base / device
        folder.mkdir(exist_ok=True)
        for name in ("emb", "tune_queries.npy", "centres.npy"):
            if not (folder / name).exists():
                (folder / name).symlink_to(base / name)
        command = [sys.executable, "-m", "bench.index_build", "--max-memory", sizes["max_memory"], "--device", device]
        measured = run_measured([*command, "--child", str(folder)], env=env)
        if measured["code"]:
            out[device] = {"error": measured["tail"][-2000:]}
            continue
        info = last_json(measured)
        quality = recall_and_latency(folder, queries, None, None)
        out[device] = {
            "factory": info["factory"],
            "backend": info.get("backend"),
            "build_s": round(measured["seconds"], 1),
            "phases_s": info.get("seconds"),
            "peak_mib": round(measured["peak_mib"]),
            "recall@10": round(float(quality["ours"][0]), 4),
            f"recall@{quality['deep']}": round(float(quality["ours"][1]), 4),
        }
    return out


def zegclip_part(sizes: dict, device: str) -> dict:
    """ZegCLIP's forward pass (ViT-B/16, random init), images/s at the given size."""
    from bench.zegclip_speed import measure

    cuda = device.startswith("cuda")
    batch, size = sizes["zegclip_batch"], sizes["zegclip_size"]
    speed = measure(
        device, batch, iterations=10 if cuda else 1, warmup=2 if cuda else 0, classes=20, size=size, amp=cuda
    )
    return {"image_px": size, "batch": batch, "classes": 20, "fp16": cuda, "images_per_s": round(speed, 2)}


def car_part(sizes: dict, device: str, arch: str) -> dict:
    """CaR's batched segmenter (random-init CLIP), seconds per image over a few toy scenes."""
    from bench.car_speed import CONCEPTS, random_init_segmenter
    from pipeline.core.models import load_model
    from pipeline.toy.quality import BENCH_SEED, render_many
    from pipeline.toy.world import WorldSpec

    torch.manual_seed(0)
    loaded = load_model(arch, device=device)
    concepts = CONCEPTS[: sizes["car_concepts"]]
    segmenter = random_init_segmenter(loaded, concepts, device)
    images, _, _ = render_many(WorldSpec(), BENCH_SEED, sizes["car_images"] + 1, workers=1, progress=False)
    segmenter.segment(images[-1], concepts)  # warm-up, not timed
    start = time.perf_counter()
    for image in images[:-1]:
        segmenter.segment(image, concepts)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / (len(images) - 1)
    return {"images": len(images) - 1, "concepts": len(concepts), "seconds_per_image": round(seconds, 3)}


def _write(path: Path, result: dict) -> None:
    path.write_text(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> int:
    """Run every part, rewrite the JSON after each; exit 1 when a part failed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="device.json", help="the JSON file to write")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the script in seconds on a CPU")
    parser.add_argument("--parts", default="embed,index,zegclip,car", help="comma-separated parts to run")
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture, random init")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - {"embed", "index", "zegclip", "car"})
    if unknown:
        parser.error(f"unknown parts {', '.join(unknown)}; known: embed, index, zegclip, car")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA device; use --device cpu (with --tiny) to check the script")
    sizes = TINY if args.tiny else FULL
    out = Path(args.out)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="coarchive-device-"))
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine(args.device), "sizes": sizes}
    index_devices = ["cpu"] if args.device == "cpu" else ["cuda", "cpu"]
    runs = {
        "embed": lambda: embed_part(work, sizes, args.device, args.arch),
        "index": lambda: index_part(work, sizes, index_devices),
        "zegclip": lambda: zegclip_part(sizes, args.device),
        "car": lambda: car_part(sizes, args.device, args.arch),
    }
    start, failed = time.perf_counter(), False
    try:
        for part in parts:
            begun = time.perf_counter()
            try:
                result[part] = runs[part]()
            except Exception as error:  # one part's failure is recorded; the others still run
                failed = True
                result[part] = {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()[-2000:]}
            result[part]["part_s"] = round(time.perf_counter() - begun, 1)
            result["seconds"] = round(time.perf_counter() - start, 1)
            _write(out, result)
            print(f"{part}: {json.dumps({k: v for k, v in result[part].items() if k != 'trace'})}", flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {out} in {result.get('seconds', 0)} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
