"""URL roots on the command line: which path options of which command take an fsspec URL, what part of it each
command reads, and the wiring that runs a command on local copies (pipeline/core/remote_root.py) and uploads what
it wrote.

`embed` reads and writes URLs itself (it streams pool shards and writes embeddings through fsspec), and `ingest`
reads a URL list itself; every other URL is worked on through a local copy in the cache folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import posixpath
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from fsspec.core import split_protocol

from pipeline.core.local_paths import is_url
from pipeline.core.logs import LOGGER, get_logger
from pipeline.core.remote_root import RemoteRoot, is_local_url, local_path_of

log = get_logger(__name__)

Patterns = Sequence[str] | Callable[[argparse.Namespace], Sequence[str]]


@dataclass(frozen=True)
class UrlOption:
    """A path option that takes a URL: what the command reads under it (patterns relative to it), whether it
    writes there, whether it names a file rather than a folder, and what more it reads once the first part is
    local (`then`, given the local folder)."""

    dest: str
    reads: Patterns = ("*",)
    writes: bool = False
    file: bool = False
    exclude: Patterns = ()
    then: Callable[[argparse.Namespace, Path], Sequence[str]] | None = None
    value: Callable[[argparse.Namespace, dict[str, str]], str | None] | None = None  # default: getattr(args, dest)


NATIVE = {"embed": ("root", "pool"), "ingest": ("urls",)}  # these read and write URLs themselves
MODEL_RECORDS = "embeddings/*/model.json"  # how a command finds the model of a root (pipeline/core/model_choice.py)


def _query_reads(args: argparse.Namespace) -> list[str]:
    pool = ["pool/*"] if args.html and not args.pool else []
    return ["embeddings/*.parquet", MODEL_RECORDS, "index/*", *pool]


def _query_vectors(args: argparse.Namespace, local: Path) -> list[str]:
    """The stored vectors too, when the search re-ranks (--rerank N > 0, or the index's own default)."""
    rerank = getattr(args, "rerank", None)
    if rerank is not None:
        return ["embeddings/*.npy"] if rerank > 0 else []
    infos = local.glob(f"index/*/{args.version}/index.json")
    return ["embeddings/*.npy"] if any(json.loads(p.read_text()).get("rerank", 0) for p in infos) else []


def _archive_reads(args: argparse.Namespace) -> list[str]:
    registry = [] if args.registry else ["concepts.yaml"]
    pool = ["pool/*"] if args.images and not args.pool else []
    return [*registry, "embeddings/*", "index/*", *pool]


def _cosegment_reads(args: argparse.Namespace) -> list[str]:
    return [f"archives/*/{args.run}/*", MODEL_RECORDS]


def _cosegment_pool(args: argparse.Namespace, local: Path) -> list[str]:
    """The pool too, when an archive of the run has no images.tar and no --pool is given."""
    if args.pool:
        return []
    concepts = [p for p in local.glob(f"archives/*/{args.run}/*") if p.is_dir()]
    return ["pool/*"] if any(not (p / "images.tar").is_file() for p in concepts) else []


def _run_root(args: argparse.Namespace, given: dict[str, str]) -> str | None:
    """`run`'s root: --root, else the config's `root` (a URL, or a path relative to a config read from a URL)."""
    if args.root:
        return args.root
    try:
        root = (yaml.safe_load(Path(args.config).read_text()) or {}).get("root")
    except (OSError, yaml.YAMLError, AttributeError):
        return None  # load_config says what is wrong with the file
    if not isinstance(root, str):
        return None
    if is_url(root) or "config" not in given or Path(root).is_absolute():
        return root
    protocol, path = split_protocol(given["config"])
    return f"{protocol}://{posixpath.normpath(posixpath.join(posixpath.dirname(path), root))}"


def _registry(reads_and_writes: bool) -> tuple[UrlOption, ...]:
    root = UrlOption("root", reads=lambda a: [] if a.registry else ["concepts.yaml"], writes=reads_and_writes)
    return (root, UrlOption("registry", file=True, writes=reads_and_writes))


URL_OPTIONS: dict[str, tuple[UrlOption, ...]] = {
    "toy generate": (UrlOption("out", reads=("toy_world.json", "pool/*_stats.json"), writes=True),),  # resumes
    "ingest": (UrlOption("pool", reads=("*.json",), writes=True),),  # img2dataset resumes from the stats files
    "index": (UrlOption("root", reads=("embeddings/*", "index/*"), writes=True),),
    "query": (UrlOption("root", reads=_query_reads, then=_query_vectors), UrlOption("pool")),
    "concepts add": _registry(True),
    "concepts remove": _registry(True),
    "concepts list": _registry(False),
    "archive": (UrlOption("root", reads=_archive_reads, writes=True), UrlOption("pool"), *_registry(False)[1:]),
    "archive diff": (UrlOption("root", reads=("archives/*",), exclude=("*/images.tar",)),),
    "cosegment": (
        UrlOption("root", reads=_cosegment_reads, writes=True, then=_cosegment_pool),
        UrlOption("pool"),
        UrlOption("out", reads=(), writes=True),
    ),
    "bank show": (UrlOption("dir"),),
    "bank import-reco": (UrlOption("out", reads=(), writes=True),),
    "eval": (
        UrlOption("data_root"),
        UrlOption("bank"),
        UrlOption("checkpoint"),
        UrlOption("out", reads=(), writes=True),
    ),
    "run": (UrlOption("config", file=True), UrlOption("root", writes=True, value=_run_root)),
    "serve": (UrlOption("root", exclude=lambda a: ["pool/*"] if a.pool else []), UrlOption("pool")),
}
SUBCOMMANDS = ("toy_command", "concepts_command", "archive_command", "bank_command")


def command_of(args: argparse.Namespace) -> str:
    """The command as typed, with its subcommand: 'index', 'concepts add', 'archive diff'."""
    words = [getattr(args, "command", None) or ""]
    words += [w for name in SUBCOMMANDS if (w := getattr(args, name, None))]
    return " ".join(words)


def url_dests(command: str) -> tuple[str, ...]:
    """The option names (argparse dests) of `command` that take a URL."""
    return (*NATIVE.get(command, ()), *(o.dest for o in URL_OPTIONS.get(command, ())))


def url_commands() -> list[str]:
    """Every command that takes a URL somewhere."""
    return sorted({*NATIVE, *URL_OPTIONS})


class _Shown:
    """stdout (or stderr) that prints each local copy's path as the URL it stands for; everything else (fileno,
    isatty, encoding, ...) is the stream's own."""

    def __init__(self, stream, names: dict[str, str]) -> None:
        self._stream, self._names = stream, names

    def write(self, text: str) -> int:
        self._stream.write(shown(text, self._names))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _UrlsInLogs(logging.Filter):
    """Diagnostics that print each local copy's path as the URL it stands for."""

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__()
        self._names = names

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = shown(record.getMessage(), self._names), None
        return True


def shown(text: str, names: dict[str, str]) -> str:
    """`text` with every local copy's path replaced by its URL (the longest paths first)."""
    for local in sorted(names, key=len, reverse=True):
        text = text.replace(local, names[local])
    return text


@dataclass
class LocalCopies:
    """The URL roots of one command: each option's RemoteRoot, and local path -> URL for messages."""

    cache_dir: Path | None = None
    roots: dict[str, RemoteRoot] | None = None
    reads: dict[str, tuple[list[str], list[str]]] | None = None  # dest -> (patterns, excluded) pulled
    names: dict[str, str] | None = None

    @contextlib.contextmanager
    def of(self, args: argparse.Namespace) -> Iterator[None]:
        """Pull what the command reads, point its options at the local copies, run the block, push what it wrote
        (also after a failure: every file was written whole, and a rerun resumes from them)."""
        self.roots, self.names, self.reads = {}, {}, {}
        given: dict[str, str] = {}
        pushes: list[tuple[RemoteRoot, dict]] = []
        for option in URL_OPTIONS.get(command_of(args), ()):
            value = option.value(args, given) if option.value else getattr(args, option.dest, None)
            if not value or not is_url(str(value)):
                continue
            url = str(value)
            given[option.dest] = url
            if is_local_url(url):
                setattr(args, option.dest, str(local_path_of(url)))
                continue
            folder, name = url.rstrip("/").rsplit("/", 1) if option.file else (url, "")
            root = RemoteRoot(folder, self.cache_dir)
            root.check()
            reads = [name] if option.file else list(option.reads(args) if callable(option.reads) else option.reads)
            exclude = list(option.exclude(args) if callable(option.exclude) else option.exclude)
            self._pull(root, reads, exclude)
            if option.then is not None and (more := option.then(args, root.local)):
                self._pull(root, more, exclude)
            local = root.local / name if name else root.local
            setattr(args, option.dest, str(local))
            self.roots[option.dest] = root
            self.reads[option.dest] = (reads, exclude)
            self.names.update({str(local): url.rstrip("/"), str(local.resolve()): url.rstrip("/")})
            if option.writes:
                pushes.append((root, root.snapshot()))
        args.remote_roots = {d: (r, *self.reads[d]) for d, r in self.roots.items()}  # `serve` refreshes these
        stdout, stderr = sys.stdout, sys.stderr
        handlers, urls = list(logging.getLogger(LOGGER).handlers), _UrlsInLogs(self.names)
        if self.names:
            sys.stdout, sys.stderr = _Shown(stdout, self.names), _Shown(stderr, self.names)
            for handler in handlers:  # records of every coarchive module pass them (logger filters would not)
                handler.addFilter(urls)
        failed = True
        try:
            yield
            failed = False
        except KeyboardInterrupt:
            pushes = []  # the next command on the root uploads what this one wrote
            raise
        finally:
            sys.stdout, sys.stderr = stdout, stderr
            for handler in handlers:
                handler.removeFilter(urls)
            for root, before in pushes:
                self._push(root, before, failed)

    def _pull(self, root: RemoteRoot, reads: list[str], exclude: Sequence[str]) -> None:
        if reads:
            done = root.pull(reads, exclude)
            log.info(f"{root.url}: local copy {root.local}: fetched {done.describe()}")

    def _push(self, root: RemoteRoot, before: dict, failed: bool) -> None:
        try:
            done = root.push(before)
        except ValueError as error:
            if not failed:
                raise
            log.warning(f"{error} (after the command failed)")
            return
        if done.files or done.kept:
            log.info(f"{root.url}: uploaded {done.describe()}")

    def shown(self, text: str) -> str:
        """`text` with local copies' paths shown as their URLs."""
        return shown(text, self.names or {})
