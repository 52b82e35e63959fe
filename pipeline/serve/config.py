"""What one service instance serves and how: data root, model, index version, token and limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.serve.origin import LOOPBACK_HOSTS
from pipeline.serve.paths import check_name
from pipeline.serve.uploads import MAX_PIXELS, MAX_UPLOAD_BYTES


@dataclass(frozen=True)
class ServeConfig:
    """Settings of a service: everything it reads lies under `root`; `token`, when set, guards every API route."""

    root: Path
    model: str = "toy"
    version: str = "v1"
    pool: Path | None = None  # default: root/pool
    token: str | None = None
    device: str = "cpu"
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    max_k: int = 200
    segment_side: int = 1024  # longer uploads are scaled down to this side before segmenting
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # Host header names answered ('*.lab.example', '*' for any)

    def checked(self) -> ServeConfig:
        """This config with the root resolved; FileNotFoundError or ValueError for a bad setting."""
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"data root not found: {self.root}")
        check_name(self.version, "index version")
        if self.token is not None and len(self.token) < 8:
            raise ValueError("the bearer token must be at least 8 characters")
        for name in ("max_upload_bytes", "max_pixels", "max_k", "segment_side"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for host in self.allowed_hosts:
            if not host or "*" in host[1:] or (host.startswith("*") and host != "*" and not host.startswith("*.")):
                raise ValueError(f"bad allowed host {host!r}: give a name, an address, '*.domain' or '*'")
        pool = Path(self.pool).expanduser().resolve() if self.pool else root.resolve() / "pool"
        return ServeConfig(
            root.resolve(),
            self.model,
            self.version,
            pool,
            self.token,
            self.device,
            self.max_upload_bytes,
            self.max_pixels,
            self.max_k,
            self.segment_side,
            tuple(self.allowed_hosts),
        )
