"""The query service as a FastAPI app: JSON API, web page, metrics, safety limits and clear 4xx errors."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.middleware.trustedhost import TrustedHostMiddleware

from pipeline.app.serve.api import build_router
from pipeline.app.serve.auth import bearer_guard
from pipeline.app.serve.config import ServeConfig
from pipeline.app.serve.engine import Engine
from pipeline.app.serve.errors import DataError
from pipeline.app.serve.images import Thumbnails
from pipeline.app.serve.metrics import Metrics, RequestCounter
from pipeline.app.serve.origin import SameOriginWrites
from pipeline.app.serve.paths import PathRefusedError
from pipeline.app.serve.server import HeaderLimit
from pipeline.app.serve.uploads import MULTIPART_OVERHEAD, BodyLimit, UploadRefusedError

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def create_app(config: ServeConfig, engine: Engine | None = None) -> FastAPI:
    """An app serving `config.root`; pass an `engine` to share one loaded model between apps (tests)."""
    config = config.checked()
    engine = engine or Engine(config)
    served = (engine.config.root, engine.config.model, engine.config.version, engine.config.device)
    if served != (config.root, config.model, config.version, config.device):
        raise ValueError("the engine given serves another root, model, index version or device")
    metrics = Metrics()
    guard = Depends(bearer_guard(config.token))
    app = FastAPIOffline(  # /docs: Swagger UI 5 (OpenAPI 3.1) served from the fastapi-offline package, no CDN
        title="coarchive",
        summary="Search concepts, browse their archives and segment images over one data root.",
        version="1",
        docs_url="/docs",
        redoc_url=None,
        static_url="/static/swagger",
    )
    app.state.config, app.state.engine, app.state.metrics = config, engine, metrics
    app.include_router(build_router(config, engine, metrics, Thumbnails(config.pool)), dependencies=[guard])
    _add_error_handlers(app, str(config.root))

    @app.get("/metrics", dependencies=[guard], include_in_schema=False)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/api/health", summary="Liveness (no token needed)")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # the last added runs first: every answer, refusals by the limits included, passes the request counter
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes + MULTIPART_OVERHEAD)
    app.add_middleware(HeaderLimit)
    app.add_middleware(SameOriginWrites)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts))  # against DNS rebinding
    app.add_middleware(RequestCounter, metrics=metrics, routes=app.routes)
    return app


def _add_error_handlers(app: FastAPI, root: str) -> None:
    """Library errors become 4xx answers with one clear message; the data root's own path is never shown."""

    def answer(status: int, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error).replace(root, "<root>")}, status_code=status)

    @app.exception_handler(UploadRefusedError)
    async def refused_upload(_: Request, error: UploadRefusedError) -> JSONResponse:
        return answer(error.status, error)

    @app.exception_handler(PathRefusedError)
    async def refused_path(_: Request, error: PathRefusedError) -> JSONResponse:
        return answer(400, error)

    @app.exception_handler(DataError)
    async def unreadable_data(_: Request, error: DataError) -> JSONResponse:
        return answer(500, error)

    @app.exception_handler(FileNotFoundError)
    async def not_found(_: Request, error: FileNotFoundError) -> JSONResponse:
        return answer(404, error)

    @app.exception_handler(ValueError)
    async def bad_value(_: Request, error: ValueError) -> JSONResponse:
        return answer(400, error)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:  # logged by uvicorn with its traceback
        return JSONResponse(
            {"detail": f"internal error ({type(error).__name__}); the server log has the details"}, status_code=500
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in error.errors()]
        return JSONResponse({"detail": "; ".join(problems), "errors": _plain(error.errors())}, status_code=422)


def _plain(errors) -> list[dict]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
