"""The nightly run's config file (YAML): a section per stage, strict keys and types (pydantic), paths checked."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Section(BaseModel):
    """A config section: unknown keys and wrong types are errors (no coercion: '3' is not an int), values frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class IngestConfig(_Section):
    """Where new URL lists arrive (a glob under the root) and how img2dataset downloads them."""

    urls: str
    input_format: str = "parquet"
    url_col: str = "url"
    caption_col: str | None = "caption"
    image_size: int = 256
    shard_size: int = 10_000
    processes: int = 1
    threads: int = 32
    timeout: int = 10


class EmbedConfig(_Section):
    """Embedding of new pool shards."""

    batch_size: int = 256
    decode_threads: int = 2


class IndexConfig(_Section):
    """The incremental FAISS index: version folder, memory budget, tuned recall, drift threshold and build choices
    (as `coarchive index --device/--coarse/--opq/--rerank`)."""

    version: str = "v1"
    max_memory: str = "2G"
    target_recall: float = 0.95
    max_imbalance: float = 3.0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    coarse: Literal["auto", "flat", "hnsw"] = "auto"
    opq: Literal["auto", "on", "off"] = "auto"
    rerank: int | None = None


class ArchivesConfig(_Section):
    """Per-concept archives refreshed for the concept registry."""

    registry: str = "concepts.yaml"
    k: int = 50
    templates: str | None = None
    dedup_threshold: float | None = None  # None: the model's own (0.95 for real CLIPs, 0.999 for the toy CLIP)
    images: bool = True


class BanksConfig(_Section):
    """Co-segmentation of the archives into the run's segment bank."""

    encoder: str = "clip-penultimate"
    lgc: bool = True
    ce: bool = True
    k: int | None = None


class EvaluateConfig(_Section):
    """The benchmark the run's bank is measured on."""

    dataset: str
    data_root: str
    split: str = "val"
    segmenter: str = "reco"
    limit: int | None = None
    batch_size: int = 8
    crf: bool = False
    concepts: list[str] | None = None


class ExecutorConfig(_Section):
    """Where embed and index tasks run: in process, a Dask LocalCluster, or a Dask scheduler's cluster."""

    kind: Literal["local", "dask"] = "local"
    scheduler: str | None = None
    workers: int = 2


class NightlyConfig(_Section):
    """One nightly run's settings; `root` is absolute, every other path in it is relative to `root`."""

    root: str
    model: str  # no default: a pool is never embedded by the toy CLIP unless the config says so
    device: str | None = None
    pool: str = "pool"
    retries: int = 2
    ingest: IngestConfig | None = None
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    archives: ArchivesConfig = Field(default_factory=ArchivesConfig)
    banks: BanksConfig = Field(default_factory=BanksConfig)
    evaluate: EvaluateConfig | None = None
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    source: str | None = None  # the config file it was read from

    def path(self, relative: str) -> Path:
        """A config path resolved against the data root (absolute paths are kept)."""
        return Path(self.root) / Path(relative).expanduser()

    def to_dict(self) -> dict:
        """The config as plain data, for the manifest."""
        return self.model_dump()


def _keys_of(path: list[str]) -> list[str]:
    """The keys the section at `path` (e.g. ['archives']) takes."""
    section: type[BaseModel] = NightlyConfig
    for name in path:
        hint = section.model_fields[name].annotation
        section = next(a for a in (hint, *typing.get_args(hint)) if isinstance(a, type) and issubclass(a, BaseModel))
    return sorted(n for n in section.model_fields if n != "source")


def _one_line(error: ValidationError, source: str) -> str:
    """The first problem pydantic found, as one line naming the key the way the YAML file spells it."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"] if isinstance(part, str)]
    key = ".".join(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        section = ".".join(loc[:-1]) or "the top level"
        return f"{source}: unknown key {key!r}; {section} takes {', '.join(_keys_of(loc[:-1]))}"
    if kind == "missing":
        return f"{source}: missing key {key!r}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{source}: {key or 'the top level'} must be a mapping, got {type(first['input']).__name__}"
    wanted = first["msg"].removeprefix("Input should be ")
    return f"{source}: {key} must be {wanted}, got {first['input']!r}"


def _check(config: NightlyConfig, source: str) -> None:
    """Value ranges and the paths that must exist before a run starts."""
    root = Path(config.root)
    if not root.is_dir():
        raise FileNotFoundError(f"{source}: data root not found: {root}")
    for key, value in (
        ("retries", config.retries),
        ("embed.batch_size", config.embed.batch_size),
        ("archives.k", config.archives.k),
        ("executor.workers", config.executor.workers),
    ):
        if value < (0 if key == "retries" else 1):
            raise ValueError(f"{source}: {key} must be positive, got {value}")
    if config.index.rerank is not None and config.index.rerank < 0:
        raise ValueError(f"{source}: index.rerank must be an integer >= 0 or null, got {config.index.rerank}")
    if not 0 < config.index.target_recall <= 1:
        raise ValueError(f"{source}: index.target_recall must be in (0, 1], got {config.index.target_recall}")
    registry = config.path(config.archives.registry)
    if not registry.is_file():
        raise FileNotFoundError(f"{source}: concept registry not found: {registry}")
    if config.evaluate is not None and not config.path(config.evaluate.data_root).is_dir():
        raise FileNotFoundError(f"{source}: benchmark folder not found: {config.path(config.evaluate.data_root)}")


def load_config(path: Path | str, root: Path | str | None = None) -> NightlyConfig:
    """Read and check a nightly config file; `root` overrides its `root` key (relative roots follow the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ValueError(f"{path}: not valid YAML{line}: {getattr(error, 'problem', error)}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    if root is not None:
        data = {**data, "root": str(Path(root).expanduser().resolve())}
    if "root" not in data:
        raise ValueError(f"{path}: missing key 'root' (or pass --root)")
    if not isinstance(data["root"], str):
        raise ValueError(f"{path}: root must be a path, got {data['root']!r}")
    data["root"] = str((path.parent / Path(data["root"]).expanduser()).resolve())  # relative to the file
    try:
        config = NightlyConfig.model_validate({**data, "source": str(path.resolve())})
    except ValidationError as error:
        raise ValueError(_one_line(error, str(path))) from None
    _check(config, str(path))
    return config
