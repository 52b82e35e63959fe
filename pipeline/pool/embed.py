"""The embed stage: pool shards -> per-shard float16 L2-normalised embeddings (.npy) and metadata (.parquet)."""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.core.io import write_atomically
from pipeline.core.model_choice import MODEL_RECORD, model_record
from pipeline.core.models import LoadedModel, ModelRef, load_model
from pipeline.core.shard_reader import decode_image, read_shard
from pipeline.core.stage import Stage

EMBED_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("key", pa.string()),
        ("url", pa.string()),
        ("caption", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("status", pa.string()),
    ]
)


def sample_id(shard: int, row: int) -> int:
    """The stable 64-bit id of a pool sample: shard << 32 | row."""
    return (shard << 32) | row


def split_id(ident: int) -> tuple[int, int]:
    """(shard, row) of a sample id."""
    return ident >> 32, ident & 0xFFFFFFFF


@functools.lru_cache(maxsize=2)
def _worker_model(ref: ModelRef, device: str | None) -> LoadedModel:
    """Each worker process loads a model once and keeps it for all its tasks."""
    return load_model(ref, device=device)


@dataclass(frozen=True)
class EmbedTask:
    """Embed one pool shard."""

    shard: int
    tar_url: str


@dataclass
class EmbedStage(Stage):
    """Embed every shard of an img2dataset pool with one model, into embeddings/{model_id}/ under the data root."""

    pool: str
    root: str
    model: ModelRef
    batch_size: int = 256
    cpu_chunk: int = 32  # on CPU, forward passes of this many images: attention stays in cache (1.8x measured)
    decode_threads: int = 2
    device: str | None = None
    name: str = "embed"

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")

    @property
    def out_dir(self) -> str:
        """Where this model's embeddings go."""
        return f"{self.root.rstrip('/')}/embeddings/{self.model.model_id}"

    def plan(self) -> list[EmbedTask]:
        """One task per .tar shard in the pool, numbered by its file name; records the model in model.json."""
        fs, path = fsspec.core.url_to_fs(self.pool)
        if not fs.isdir(path):
            raise FileNotFoundError(f"pool folder not found: {self.pool}")
        tars = sorted(p for p in fs.ls(path, detail=False) if p.endswith(".tar"))
        if not tars:
            raise ValueError(f"no .tar shards in pool {self.pool}")
        tasks = []
        for tar in tars:
            stem = PurePosixPath(tar).stem
            if not stem.isdigit():
                raise ValueError(f"shard name {tar!r} is not img2dataset's zero-padded number")
            tasks.append(EmbedTask(int(stem), fs.unstrip_protocol(tar)))
        self._record_model()
        return tasks

    def _record_model(self) -> None:
        """Write model.json (the reference behind the folder's model id), once, in the process that plans."""
        record = json.dumps(model_record(self.model), indent=2, sort_keys=True).encode()
        fs, path = fsspec.core.url_to_fs(f"{self.out_dir}/{MODEL_RECORD}")
        if not fs.exists(path) or fs.cat_file(path) != record:
            write_atomically(f"{self.out_dir}/{MODEL_RECORD}", lambda f: f.write(record))

    def task_id(self, task: EmbedTask) -> str:
        """The shard's file stem."""
        return f"{task.shard:05d}"

    def is_done(self, task: EmbedTask) -> bool:
        """A shard is done when its parquet (written after its .npy) exists."""
        fs, path = fsspec.core.url_to_fs(f"{self.out_dir}/{task.shard:05d}.parquet")
        return fs.exists(path)

    def run_task(self, task: EmbedTask) -> dict:
        """Read, decode, preprocess (threads) and embed one shard; write .npy then .parquet atomically."""
        loaded = _worker_model(self.model, self.device)
        contents = read_shard(task.tar_url)
        problems = dict(contents.problems)
        with ThreadPoolExecutor(self.decode_threads) as pool:
            decoded = list(pool.map(lambda s: decode_image(s.data), contents.samples))
            good = [(s, img) for s, (img, _) in zip(contents.samples, decoded, strict=True) if img is not None]
            for _, reason in decoded:
                if reason:
                    problems[reason] = problems.get(reason, 0) + 1
            pixels = list(pool.map(lambda item: loaded.preprocess(Image.fromarray(item[1])), good))
        vectors = self._encode(loaded, pixels)  # (n, d) float16
        rows = [
            {
                "id": sample_id(task.shard, s.row),
                "key": s.key,
                "url": s.meta.get("url") or "",
                "caption": s.meta.get("caption") or "",
                "width": int(img.shape[1]),
                "height": int(img.shape[0]),
                "status": "ok",
            }
            for s, img in good
        ]
        self._write(task, vectors, rows, problems)
        return {
            "samples": len(contents.samples),
            "embedded": len(rows),
            **{f"skipped: {k}": v for k, v in problems.items()},
        }

    @torch.no_grad()
    def _encode(self, loaded: LoadedModel, pixels: list[torch.Tensor]) -> np.ndarray:
        dim = loaded.embed_dim
        if not pixels:
            return np.zeros((0, dim), np.float16)
        out = []
        autocast = loaded.device.type == "cuda"
        step = self.batch_size if autocast else min(self.batch_size, self.cpu_chunk)
        for start in range(0, len(pixels), step):
            batch = torch.stack(pixels[start : start + step]).to(loaded.device)
            with torch.autocast(loaded.device.type, enabled=autocast):
                features = loaded.model.encode_image(batch)
            out.append(F.normalize(features.float(), dim=-1).cpu().numpy().astype(np.float16))
        return np.concatenate(out)

    def _write(self, task: EmbedTask, vectors: np.ndarray, rows: list[dict], problems: dict) -> None:
        stem = f"{self.out_dir}/{task.shard:05d}"
        write_atomically(f"{stem}.npy", lambda f: np.save(f, vectors))
        write_atomically(
            f"{stem}.problems.json", lambda f: f.write(json.dumps(problems, indent=2, sort_keys=True).encode())
        )
        # the parquet is the done-marker: it goes last
        write_atomically(
            f"{stem}.parquet", lambda f: pq.write_table(pa.Table.from_pylist(rows, schema=EMBED_SCHEMA), f)
        )
