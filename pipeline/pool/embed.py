"""The embed stage: pool shards -> per-shard float16 L2-normalised embeddings (.npy) and metadata (.parquet)."""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

from pipeline.core.io import write_atomically
from pipeline.core.loader import ShardLoader
from pipeline.core.loader_device import PixelSpec, batch_to_device
from pipeline.core.model_choice import MODEL_RECORD, model_record
from pipeline.core.models import LoadedModel, ModelRef, load_model
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


DECODES = ("auto", "cpu", "gpu")
PRECISIONS = {"auto": None, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@functools.lru_cache(maxsize=2)
def _worker_model(ref: ModelRef, device: str | None) -> LoadedModel:
    """Each worker process loads a model once and keeps it for all its tasks (channels-last on CUDA)."""
    loaded = load_model(ref, device=device)
    if loaded.device.type == "cuda":
        loaded.model.to(memory_format=torch.channels_last)
    return loaded


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
    decode_threads: int = 2  # with loader_workers 0: threads decoding in the embedding process
    device: str | None = None
    loader_workers: int = 0  # processes decoding and preprocessing while the model runs (0: decode_threads threads)
    decode: str = "auto"  # JPEGs decoded on the model's device (gpu), by PIL in the loader (cpu), gpu on CUDA (auto)
    precision: str = "auto"  # autocast dtype: fp16 on CUDA and fp32 on CPU (auto), or fp32, fp16, bf16
    prefetch: int = 2  # loader jobs in flight per worker: bounds the decoded pixels held at once
    name: str = "embed"

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.loader_workers < 0 or self.decode_threads < 1 or self.prefetch < 1:
            raise ValueError(
                f"loader workers must be >= 0 and decode threads, prefetch >= 1; got {self.loader_workers}, "
                f"{self.decode_threads}, {self.prefetch}"
            )
        if self.decode not in DECODES:
            raise ValueError(f"decode must be one of {', '.join(DECODES)}; got {self.decode!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.device is not None and torch.device(self.device).type == "cpu" and self.precision == "fp16":
            raise ValueError("precision fp16 needs a CUDA device (on the CPU: fp32 or bf16)")

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
        """Stream one shard through the loader (workers decode while the model runs); write .npy then .parquet."""
        loaded = _worker_model(self.model, self.device)
        cuda = loaded.device.type == "cuda"
        spec = PixelSpec.of(loaded.model.visual, loaded.image_size)
        on_device = self.decode == "gpu" or (self.decode == "auto" and cuda and spec is not None)
        if on_device and spec is None:
            raise ValueError(f"--decode gpu: {self.model}'s transform is not shortest-side resize and crop")
        step = self.batch_size if cuda else min(self.batch_size, self.cpu_chunk)
        loader = ShardLoader(
            loaded.preprocess,
            step,
            workers=self.loader_workers,
            threads=self.decode_threads,
            prefetch=self.prefetch,
            jpeg_to_device=on_device,
            pin_memory=cuda,
        )
        problems: Counter = Counter()  # what the tar reader met, then the images that did not decode
        bad_images: Counter = Counter()
        vectors, rows = [], []
        for batch in loader.batches(task.tar_url, problems, bad_images):
            pixels, dropped = batch_to_device(batch, loaded.device, spec, loaded.preprocess)  # (m, 3, S, S)
            bad_images.update(dropped.values())
            kept = [i for i in range(len(batch)) if i not in dropped]
            vectors.append(self._forward(loaded, pixels))  # (m, d) float32 on the device
            for i in kept:
                sample, (width, height) = batch.samples[i], batch.sizes[i]
                rows.append(
                    {
                        "id": sample_id(task.shard, sample.row),
                        "key": sample.key,
                        "url": sample.meta.get("url") or "",
                        "caption": sample.meta.get("caption") or "",
                        "width": width,
                        "height": height,
                        "status": "ok",
                    }
                )
        problems.update(bad_images)
        self._write(task, self._to_numpy(vectors, loaded.embed_dim), rows, dict(problems))
        samples = loader.stats.read
        return {"samples": samples, "embedded": len(rows), **{f"skipped: {k}": v for k, v in problems.items()}}

    def _autocast_dtype(self, device: torch.device) -> torch.dtype:
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return torch.float16 if device.type == "cuda" else torch.float32
        if dtype is torch.float16 and device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device (on the CPU: fp32 or bf16)")
        return dtype

    @torch.no_grad()
    def _forward(self, loaded: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
        """(m, 3, S, S) pixels -> (m, d) float32 L2-normalised features, left on the model's device."""
        dtype = self._autocast_dtype(loaded.device)
        if loaded.device.type == "cuda":
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        with torch.autocast(loaded.device.type, dtype=dtype, enabled=dtype is not torch.float32):
            features = loaded.model.encode_image(pixels)
        return F.normalize(features.float(), dim=-1)

    @staticmethod
    def _to_numpy(vectors: list[torch.Tensor], dim: int) -> np.ndarray:
        """Per-batch features -> one (n, d) float16 array, converted batch by batch as the whole-shard path did."""
        if not vectors:
            return np.zeros((0, dim), np.float16)
        return np.concatenate([v.cpu().numpy().astype(np.float16) for v in vectors])

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
