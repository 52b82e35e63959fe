"""A data root at an fsspec URL (s3://bucket/root, gs://..., memory://...) worked on through a local copy.

A command given a URL root pulls the part of the root it reads into a cache folder (only files whose remote tag,
the ETag or size and time, changed since the last pull are fetched), runs its stage on that folder as on any local
root, then pushes what the stage created or changed. Uploads go file by file, data files first and done-markers
(.json, .parquet, .yaml) last, each in the order the stage wrote them, so a reader of the bucket never sees a
marker before its data; each upload is atomic (an object store's PUT, else a temporary name renamed). Nothing in
the bucket is ever deleted: a file a command deleted locally stays there, and is remembered so that later pulls do
not fetch it back.

One cache folder per bucket (protocol, endpoint and bucket hashed), so a root, its pool and a benchmark folder of
the same bucket share one local copy: `CACHE/HASH/data/` mirrors the bucket, `CACHE/HASH/state.sqlite` holds what
it knows (see remote_state.py), `CACHE/HASH/bucket.json` names the bucket.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.core import split_protocol

from pipeline.core.logs import get_logger
from pipeline.core.remote_state import FileRow, RemoteState

log = get_logger(__name__)

LOCAL_PROTOCOLS = ("file", "local")
OBJECT_STORES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "memory")  # a PUT is atomic
MARKER_SUFFIXES = (".json", ".parquet", ".yaml", ".yml")  # done-markers: uploaded and renamed into place last
SKIPPED_NAMES = ("*.tmp", ".*.part", ".lock", ".lock.owner.json")  # temporary files and per-machine locks


class RemoteRootError(ValueError):
    """A URL root that cannot be used: an unreachable endpoint, a missing bucket, refused access."""


@dataclass
class Transfer:
    """What one pull or push did: files and bytes moved, files found unchanged, deletions noted."""

    files: int = 0
    bytes: int = 0
    unchanged: int = 0
    kept: int = 0  # push: deleted locally, kept in the bucket
    removed: int = 0  # pull: local copies of files the bucket no longer has, removed

    def describe(self) -> str:
        """One phrase, e.g. '3 files (1.2 MB), 10 unchanged'."""
        parts = [f"{self.files} file{'' if self.files == 1 else 's'} ({self.bytes / 1e6:.1f} MB)"]
        parts += [f"{self.unchanged} unchanged"] if self.unchanged else []
        parts += [f"{self.kept} deleted locally and kept in the bucket"] if self.kept else []
        parts += [f"{self.removed} gone from the bucket and removed locally"] if self.removed else []
        return ", ".join(parts)


def default_cache_dir() -> Path:
    """Where local copies of URL roots live: $COARCHIVE_CACHE/roots, else ~/.cache/coarchive/roots."""
    return Path(os.environ.get("COARCHIVE_CACHE", Path.home() / ".cache" / "coarchive")) / "roots"


def is_local_url(url: str) -> bool:
    """Whether `url` is a file:// (or local://) URL, which names a local path and needs no copy."""
    return split_protocol(url)[0] in LOCAL_PROTOCOLS


def local_path_of(url: str) -> Path:
    """The local path a file:// URL names."""
    return Path(fsspec.core.url_to_fs(url)[1])


def matches(rel: str, pattern: str) -> bool:
    """Whether path `rel` (relative to the root) is selected by `pattern`: '*' or '' (all), a glob ('*' spans
    folders), or a plain file or folder name."""
    if pattern in ("", "*"):
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(rel, pattern)
    pattern = pattern.rstrip("/")
    return rel == pattern or rel.startswith(pattern + "/")


def _base(pattern: str) -> str:
    """The folder (or file) a pattern's listing starts from: the folders before its first glob character."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=None)
    if cut is None:
        return pattern.rstrip("/")
    head = pattern[:cut]
    return head.rsplit("/", 1)[0] if "/" in head else ""


def _skipped(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, p) for p in SKIPPED_NAMES)


def _tag(info: dict) -> str:
    """A remote file's version: its ETag where the store has one, else its size and modification time."""
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if etag:
        return str(etag).strip('"')
    when = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
    return f"{info.get('size')}@{when}"


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _is_marker(rel: str) -> bool:
    return rel.endswith(MARKER_SUFFIXES)


class RemoteRoot:
    """A root at `url` and its local copy under `cache_dir`: `local` is the folder a stage reads and writes."""

    def __init__(self, url: str, cache_dir: Path | str | None = None) -> None:
        self.url = url.rstrip("/")
        protocol = split_protocol(self.url)[0]
        if protocol is None or protocol in LOCAL_PROTOCOLS:
            raise ValueError(f"{url} is not a remote URL")
        self.fs, path = fsspec.core.url_to_fs(self.url)
        self.protocol = protocol
        self.bucket, _, self.key = path.strip("/").partition("/")
        if not self.bucket:
            raise ValueError(f"{url} names no bucket or folder")
        endpoint = self._endpoint()
        ident = json.dumps([protocol, endpoint, self.bucket])
        self.cache = (
            Path(cache_dir or default_cache_dir()).expanduser() / hashlib.sha256(ident.encode()).hexdigest()[:16]
        )
        self.data = self.cache / "data"  # the bucket's local copy
        self.local = (self.data / self.key) if self.key else self.data
        self.local.mkdir(parents=True, exist_ok=True)
        (self.cache / "bucket.json").write_text(
            json.dumps({"protocol": protocol, "endpoint": endpoint, "bucket": self.bucket})
        )
        self.state = RemoteState(self.cache / "state.sqlite")
        self._pull_lock = threading.Lock()

    def _endpoint(self) -> str | None:
        options = self.fs.storage_options
        endpoint = (options.get("client_kwargs") or {}).get("endpoint_url") or options.get("endpoint_url")
        if endpoint is None and self.protocol in ("s3", "s3a"):
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return endpoint

    # paths: `rel` is relative to the root, a state path relative to the bucket, a remote path includes the bucket
    def _state_path(self, rel: str) -> str:
        return f"{self.key}/{rel}" if self.key else rel

    def _remote(self, state_path: str) -> str:
        return f"{self.bucket}/{state_path}"

    def _rel(self, remote: str) -> str:
        state_path = remote.strip("/").split("/", 1)[1]
        return state_path[len(self.key) + 1 :] if self.key else state_path

    def _explain(self, error: Exception, doing: str) -> RemoteRootError:
        text = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if isinstance(error, FileNotFoundError) and "bucket" in text.lower():
            text = f"bucket {self.bucket!r} not found"
        elif isinstance(error, PermissionError):
            text = f"access denied ({text})"
        return RemoteRootError(f"cannot {doing} {self.url}: {text}")

    @contextlib.contextmanager
    def _errors(self, doing: str):
        try:
            yield
        except RemoteRootError:
            raise
        except Exception as error:  # botocore, aiohttp, gcsfs... each raise their own: one line naming the URL
            raise self._explain(error, doing) from None

    def check(self) -> None:
        """RemoteRootError (one line naming the URL) unless the endpoint answers and the bucket exists."""
        probe = f"{self.bucket}/{self._state_path('.coarchive-probe')}"
        try:
            self.fs.find(probe)
        except FileNotFoundError as error:
            if self.protocol != "memory":
                raise self._explain(error, "read") from None
        except Exception as error:
            raise self._explain(error, "reach") from None

    def _listing(self, patterns: Iterable[str]) -> dict[str, dict]:
        """rel -> info of the remote files selected by `patterns`."""
        found: dict[str, dict] = {}
        self.fs.invalidate_cache()
        for pattern in patterns:
            base = _base(pattern)
            start = (
                self._remote(self._state_path(base)) if base else self._remote(self.key) if self.key else self.bucket
            )
            with self._errors("read"):
                listing = self.fs.find(start, detail=True)
            for name, info in listing.items():
                rel = self._rel(name)
                if info.get("type", "file") == "file" and rel and matches(rel, pattern) and not _skipped(rel):
                    found[rel] = info
        return found

    def pull(self, patterns: Iterable[str] = ("*",), exclude: Iterable[str] = ()) -> Transfer:
        """Bring the files `patterns` select up to date in the local copy; files whose tag is unchanged stay."""
        patterns, exclude = list(patterns), list(exclude)
        with self._pull_lock:  # a serve refresh never runs twice at once
            remote = {r: i for r, i in self._listing(patterns).items() if not any(matches(r, e) for e in exclude)}
            rows = self.state.rows(self.key)
            done = Transfer()
            wanted: list[tuple[str, dict]] = []
            for rel, info in remote.items():
                row, path = rows.get(self._state_path(rel)), self.local / rel
                if row is not None and row.tag == _tag(info):
                    if row.deleted or (path.is_file() and _signature(path) == row.local):
                        done.unchanged += 1
                        continue
                wanted.append((rel, info))
            done.removed = self._forget_gone(rows, remote, patterns, exclude)
            self._fetch(wanted, done)
            return done

    def _forget_gone(self, rows: dict[str, FileRow], remote: dict, patterns: list[str], exclude: list[str]) -> int:
        """Remove local copies (left unchanged since their pull) of selected files that the bucket no longer has."""
        gone = []
        for state_path, row in rows.items():
            rel = state_path[len(self.key) + 1 :] if self.key else state_path
            selected = any(matches(rel, p) for p in patterns) and not any(matches(rel, e) for e in exclude)
            if not selected or rel in remote:
                continue
            path = self.local / rel
            if not row.deleted and path.is_file() and _signature(path) == row.local:
                path.unlink()
            gone.append(state_path)
        self.state.drop(gone)
        return len(gone)

    def _fetch(self, wanted: list[tuple[str, dict]], done: Transfer) -> None:
        """Download `wanted` under temporary names, then rename them into place, data files before markers."""
        if not wanted:
            return
        temps = []
        for rel, _ in wanted:
            path = self.local / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            temps.append(path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part"))
        try:
            with self._errors("read"):
                self.fs.get([self._remote(self._state_path(r)) for r, _ in wanted], [str(t) for t in temps])
            order = sorted(range(len(wanted)), key=lambda i: (_is_marker(wanted[i][0]), wanted[i][0]))
            rows = []
            for i in order:
                rel, info = wanted[i]
                os.replace(temps[i], self.local / rel)
                size, _ = local = _signature(self.local / rel)
                rows.append(FileRow(self._state_path(rel), _tag(info), int(info.get("size") or size), local))
                done.files, done.bytes = done.files + 1, done.bytes + size
            self.state.put(rows)
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """rel -> (size, mtime_ns) of every file of the local root (temporary files and locks left out)."""
        out = {}
        for folder, _, names in os.walk(self.local):
            for name in names:
                path = Path(folder) / name
                rel = path.relative_to(self.local).as_posix()
                if not _skipped(rel) and path.is_file():
                    out[rel] = _signature(path)
        return out

    def push(self, before: dict[str, tuple[int, int]] | None = None) -> Transfer:
        """Upload the local files that are new or changed since the bucket last matched them; files in `before`
        (a snapshot) that are gone now are noted as deleted locally and kept in the bucket."""
        after = self.snapshot()
        rows = self.state.rows(self.key)
        done = Transfer()
        changed = []
        for rel, sig in after.items():
            row = rows.get(self._state_path(rel))
            if row is None or row.deleted or row.local != sig:
                changed.append(rel)
            else:
                done.unchanged += 1
        gone = [rows[p] for rel in (before or {}) if rel not in after and (p := self._state_path(rel)) in rows]
        gone = [FileRow(r.path, r.tag, r.size, r.local, True) for r in gone if not r.deleted]
        if gone:
            log.info(f"{len(gone)} files deleted locally are kept in {self.url} (coarchive never deletes remote data)")
        self.state.put(gone)
        done.kept = len(gone)
        if changed:
            self._upload(sorted(changed, key=lambda r: (_is_marker(r), after[r][1], r)), after, done)
        return done

    def _upload(self, ordered: list[str], after: dict[str, tuple[int, int]], done: Transfer) -> None:
        data = [r for r in ordered if not _is_marker(r)]
        with self._errors("write"):
            if data:
                self._put(data)  # concurrently on async stores
            for rel in ordered[len(data) :]:
                self._put([rel])  # markers one by one, in the order they were written
            tags = self._tags(ordered)
        rows = []
        for rel in ordered:
            size = after[rel][0]
            rows.append(FileRow(self._state_path(rel), tags.get(rel, f"{size}@unknown"), size, after[rel]))
            done.files, done.bytes = done.files + 1, done.bytes + size
        self.state.put(rows)

    def _put(self, rels: list[str]) -> None:
        sources = [str(self.local / r) for r in rels]
        targets = [self._remote(self._state_path(r)) for r in rels]
        if self.protocol in OBJECT_STORES:
            self.fs.put(sources, targets)
            return
        for source, target in zip(sources, targets, strict=True):  # other filesystems: a temporary name, renamed
            temp = f"{target}.{uuid.uuid4().hex[:8]}.tmp"
            self.fs.put_file(source, temp)
            self.fs.mv(temp, target)

    def _tags(self, rels: list[str]) -> dict[str, str]:
        """rel -> remote tag of just-uploaded files, one listing per folder."""
        self.fs.invalidate_cache()
        by_folder: dict[str, list[str]] = {}
        for rel in rels:
            by_folder.setdefault(self._remote(self._state_path(rel)).rsplit("/", 1)[0], []).append(rel)
        tags = {}
        for folder in by_folder:
            for info in self.fs.ls(folder, detail=True):
                if info.get("type", "file") == "file":
                    tags[self._rel(info["name"])] = _tag(info)
        return tags

    def refresh_every(
        self,
        seconds: float,
        patterns: Iterable[str] = ("*",),
        exclude: Iterable[str] = (),
        on_pull: Callable[[Transfer], None] | None = None,
    ) -> threading.Event:
        """Pull `patterns` (less `exclude`) every `seconds` in a daemon thread until the returned event is set; a
        failed pull is logged and retried at the next tick."""
        stop = threading.Event()
        patterns, exclude = list(patterns), list(exclude)

        def loop() -> None:
            while not stop.wait(seconds):
                try:
                    done = self.pull(patterns, exclude)
                except Exception as error:  # a network blip must not end the service
                    log.warning(f"refresh of {self.url} failed: {error}")
                    continue
                if on_pull is not None:
                    on_pull(done)

        threading.Thread(target=loop, name=f"refresh {self.url}", daemon=True).start()
        return stop
