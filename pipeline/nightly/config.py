"""The nightly run's config file (YAML): sections per stage, strict keys and types, paths resolved and checked."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class IngestConfig:
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


@dataclass(frozen=True)
class EmbedConfig:
    """Embedding of new pool shards."""

    batch_size: int = 256
    decode_threads: int = 2


@dataclass(frozen=True)
class IndexConfig:
    """The incremental FAISS index: version folder, memory budget, tuned recall and the drift threshold."""

    version: str = "v1"
    max_memory: str = "2G"
    target_recall: float = 0.95
    max_imbalance: float = 3.0


@dataclass(frozen=True)
class ArchivesConfig:
    """Per-concept archives refreshed for the concept registry."""

    registry: str = "concepts.yaml"
    k: int = 50
    templates: str | None = None
    dedup_threshold: float = 0.95
    images: bool = True


@dataclass(frozen=True)
class BanksConfig:
    """Co-segmentation of the archives into the run's segment bank."""

    encoder: str = "clip-penultimate"
    lgc: bool = True
    ce: bool = True
    k: int | None = None


@dataclass(frozen=True)
class EvaluateConfig:
    """The benchmark the run's bank is measured on."""

    dataset: str
    data_root: str
    split: str = "val"
    segmenter: str = "reco"
    limit: int | None = None
    batch_size: int = 8
    crf: bool = False
    concepts: list[str] | None = None


@dataclass(frozen=True)
class ExecutorConfig:
    """Where embed and index tasks run: in process, a Dask LocalCluster, or a Dask scheduler's cluster."""

    kind: str = "local"
    scheduler: str | None = None
    workers: int = 2


@dataclass(frozen=True)
class NightlyConfig:
    """One nightly run's settings; `root` is absolute, every other path in it is relative to `root`."""

    root: str
    model: str = "toy"
    device: str | None = None
    pool: str = "pool"
    retries: int = 2
    ingest: IngestConfig | None = None
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    archives: ArchivesConfig = field(default_factory=ArchivesConfig)
    banks: BanksConfig = field(default_factory=BanksConfig)
    evaluate: EvaluateConfig | None = None
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    source: str | None = None  # the config file it was read from

    def path(self, relative: str) -> Path:
        """A config path resolved against the data root (absolute paths are kept)."""
        return Path(self.root) / Path(relative).expanduser()

    def to_dict(self) -> dict:
        """The config as plain data, for the manifest."""
        return dataclasses.asdict(self)


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _section(cls: type, data: Any, where: str, source: str) -> Any:
    """Build dataclass `cls` from a mapping, with a one-line ValueError for unknown keys or wrong types."""
    label = where or "the top level"
    if not isinstance(data, dict):
        raise ValueError(f"{source}: {label} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ValueError(f"{source}: unknown key {key!r}; {label} takes {', '.join(sorted(fields))}")
    values = {}
    for name, value in data.items():
        hint, key = hints[name], f"{where}.{name}" if where else name
        section = next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), None)
        section = hint if dataclasses.is_dataclass(hint) else section
        if section is not None and value is not None:
            values[name] = _section(section, value, key, source)
        elif not _type_ok(value, hint):
            raise ValueError(f"{source}: {key} must be {_describe(hint)}, got {value!r}")
        else:
            values[name] = value
    missing = [
        n for n, f in fields.items() if n not in values and f.default is f.default_factory is dataclasses.MISSING
    ]
    if missing:
        key = f"{where}.{missing[0]}" if where else missing[0]
        raise ValueError(f"{source}: missing key {key!r}")
    return cls(**values)


def _describe(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("NoneType", "null").replace("<class '", "").replace("'>", "")


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
    if config.executor.kind not in ("local", "dask"):
        raise ValueError(f"{source}: executor.kind must be 'local' or 'dask', got {config.executor.kind!r}")
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
    config = dataclasses.replace(_section(NightlyConfig, data, "", str(path)), source=str(path.resolve()))
    _check(config, str(path))
    return config
