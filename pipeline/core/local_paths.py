"""Options that take a local path only: a URL there is a one-line error, never a folder named after its scheme."""

from __future__ import annotations

import argparse

from fsspec.core import split_protocol

URL_OPTIONS = {"embed": ("root", "pool")}  # command -> its path options that take any fsspec URL
PATH_OPTIONS = ("root", "pool", "registry", "out", "data_root")  # local paths everywhere else


def is_url(text: str) -> bool:
    """Whether `text` names a URL (scheme://... or a chained fsspec URL), not a local path."""
    return split_protocol(text)[0] is not None


def require_local(value: str | None, option: str, command: str) -> None:
    """ValueError naming `value` when it is a URL, where `command` takes a local path only."""
    if value and is_url(str(value)):
        takers = ", ".join(sorted(URL_OPTIONS))
        raise ValueError(
            f"{option} {value} is a URL; coarchive {command} takes a local path only (URL roots: {takers})"
        )


def check_local_options(args: argparse.Namespace) -> None:
    """Refuse a URL in any path option of the parsed command that cannot read or write one."""
    command = getattr(args, "command", None) or ""
    allowed = URL_OPTIONS.get(command, ())
    for name in PATH_OPTIONS:
        if name not in allowed:
            require_local(getattr(args, name, None), f"--{name.replace('_', '-')}", command)
