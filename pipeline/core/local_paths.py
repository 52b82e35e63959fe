"""Path options that take a local path only: a URL there is a one-line error, never a folder named after its scheme.

Which options of which command take a URL is the application's table (pipeline/app/url_roots.py); this module
checks the rest.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection

from fsspec.core import split_protocol

PATH_OPTIONS = ("root", "pool", "registry", "out", "data_root", "bank", "checkpoint", "config")


def is_url(text: str) -> bool:
    """Whether `text` names a URL (scheme://... or a chained fsspec URL), not a local path."""
    return split_protocol(text)[0] is not None


def require_local(value: str | None, option: str, command: str) -> None:
    """ValueError naming `value` when it is a URL, where `command` takes a local path only."""
    if value and is_url(str(value)):
        raise ValueError(f"{option} {value} is a URL; coarchive {command} takes a local path there")


def check_local_options(args: argparse.Namespace, command: str, url_options: Collection[str]) -> None:
    """Refuse a URL in any path option of the parsed `command` except those in `url_options` (argparse dests)."""
    for name in PATH_OPTIONS:
        if name not in url_options:
            require_local(getattr(args, name, None), f"--{name.replace('_', '-')}", command)
