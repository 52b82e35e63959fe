"""What one service instance serves and how: data root, model, index version, token and limits (pydantic-checked)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.app.serve.origin import LOOPBACK_HOSTS
from pipeline.app.serve.paths import check_name
from pipeline.app.serve.uploads import MAX_PIXELS, MAX_UPLOAD_BYTES


class ServeConfig(BaseModel):
    """Settings of a service: everything it reads lies under `root`; `token`, when set, guards every API route."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: Path
    model: str = "toy"
    version: str = "v1"
    pool: Path | None = None  # default: root/pool
    token: str | None = Field(default=None, min_length=8)
    device: str = "cpu"
    max_upload_bytes: int = Field(default=MAX_UPLOAD_BYTES, ge=1)
    max_pixels: int = Field(default=MAX_PIXELS, ge=1)
    max_k: int = Field(default=200, ge=1)
    segment_side: int = Field(default=1024, ge=1)  # longer uploads are scaled down to this side before segmenting
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # Host header names answered ('*.lab.example', '*' for any)

    @field_validator("version")
    @classmethod
    def _plain_version(cls, version: str) -> str:
        check_name(version, "index version")
        return version

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            if not host or "*" in host[1:] or (host.startswith("*") and host != "*" and not host.startswith("*.")):
                raise ValueError(f"bad allowed host {host!r}: give a name, an address, '*.domain' or '*'")
        return hosts

    @classmethod
    def build(cls, **settings) -> ServeConfig:
        """A config from keyword settings; ValueError with one line naming the bad setting (as the CLI shows it)."""
        try:
            return cls(**settings)
        except ValidationError as error:
            first = error.errors()[0]
            name = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            if name == "token" and first["type"] == "string_too_short":
                message = "the bearer token must be at least 8 characters"
            elif first["type"] == "greater_than_equal":
                message = f"{name} must be positive, got {first['input']}"
            raise ValueError(message) from None

    def checked(self) -> ServeConfig:
        """This config with the root and pool resolved; FileNotFoundError for a missing root."""
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"data root not found: {self.root}")
        pool = Path(self.pool).expanduser().resolve() if self.pool else root.resolve() / "pool"
        return self.model_copy(update={"root": root.resolve(), "pool": pool})
