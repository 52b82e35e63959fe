"""Optional bearer-token guard: with a token configured, API requests must send `Authorization: Bearer TOKEN`."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fastapi import HTTPException, Request


def bearer_guard(token: str | None) -> Callable[[Request], None]:
    """A FastAPI dependency that lets every request through without a token, else only those carrying it."""

    def guard(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(
                401,
                "missing or wrong bearer token (send 'Authorization: Bearer TOKEN')",
                {"WWW-Authenticate": "Bearer"},
            )

    return guard
