"""The JSON API routes: queries, concepts, archives, banks, segmenters, segmentation and run manifests."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile

from pipeline.app.serve import catalog
from pipeline.app.serve.config import ServeConfig
from pipeline.app.serve.engine import Engine, SegmenterKey, scale_down
from pipeline.app.serve.images import Thumbnails, png_bytes, png_uri
from pipeline.app.serve.metrics import Metrics
from pipeline.app.serve.overlay import legend, mask_image, overlay_image
from pipeline.app.serve.uploads import UploadRefusedError, decode_upload
from pipeline.pool.query import Hit
from segment.segmenter import available_segmenters

SKIPPED_HEADER = "X-Coarchive-Skipped"  # JSON list of "path: reason" for listing entries left out as unreadable
SKIPPED_SHOWN = 20
log = logging.getLogger(__name__)
Upload = Annotated[UploadFile, File(description="an image: PNG, JPEG, WebP, BMP or GIF")]


def build_router(config: ServeConfig, engine: Engine, metrics: Metrics, thumbs: Thumbnails) -> APIRouter:
    """The /api routes over one engine, within the limits of `config`; authentication is added by the app."""
    router = APIRouter(prefix="/api")

    def check_k(k: int) -> int:
        if k > config.max_k:
            raise HTTPException(422, f"k must be at most {config.max_k}, got {k}")
        return k

    def read_upload(file: UploadFile) -> bytes:
        data = file.file.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            raise UploadRefusedError(413, f"the upload is over the limit of {config.max_upload_bytes} bytes")
        return data

    def listed(lister, response: Response) -> list[dict]:
        """A catalog listing; entries left out as unreadable are named in the X-Coarchive-Skipped header."""
        skipped: list[str] = []
        entries = lister(config.root, skipped)
        if skipped:
            shown = skipped[:SKIPPED_SHOWN]
            if len(skipped) > SKIPPED_SHOWN:
                shown.append(f"... and {len(skipped) - SKIPPED_SHOWN} more")
            response.headers[SKIPPED_HEADER] = json.dumps(shown)
            log.warning("%s: left out %d unreadable entries: %s", lister.__name__, len(skipped), "; ".join(skipped))
        return entries

    def hits_json(hits: list[Hit], with_thumbnails: bool) -> list[dict]:
        out = []
        for hit in hits:
            row = dict(hit.__dict__)
            row["thumbnail"] = thumbs.pool_sample(hit.id, hit.key) if with_thumbnails else None
            out.append(row)
        return out

    @router.get("/info", summary="What this service serves")
    def info() -> dict:
        index = engine.index_info()
        summary = ("factory", "count", "dim", "nprobe", "deep")  # deep: the nprobe a top-1000 searches with
        return {
            "model": str(engine.clip.ref),
            "model_id": engine.model_id,
            "index_version": config.version,
            "index": None if index is None else {k: index.get(k) for k in summary},
            "auth": config.token is not None,
            "limits": {"upload_bytes": config.max_upload_bytes, "pixels": config.max_pixels, "k": config.max_k},
        }

    @router.get("/query", summary="Search the index with a text query")
    def text_query(
        text: Annotated[str, Query(min_length=1, max_length=300, description="a concept or phrase, e.g. 'heart'")],
        k: Annotated[int, Query(ge=1, description="number of hits")] = 12,
        thumbnails: bool = True,
    ) -> dict:
        k = check_k(k)
        start = time.perf_counter()
        with metrics.timed(metrics.query_seconds, metrics.query_failures, "text"):
            hits = hits_json(engine.text_query([text], k)[0], thumbnails)
        seconds = round(time.perf_counter() - start, 4)
        concept = catalog.concept_archive(config.root, engine.model_id, text)  # its archive says if it is weak
        return {"query": text, "k": k, "seconds": seconds, "hits": hits, "concept": concept}

    @router.post("/query/image", summary="Search the index with an uploaded image")
    def image_query(
        file: Upload,
        k: Annotated[int, Form(ge=1)] = 12,
        thumbnails: Annotated[bool, Form()] = True,
    ) -> dict:
        k = check_k(k)
        start = time.perf_counter()
        with metrics.timed(metrics.query_seconds, metrics.query_failures, "image"):
            image = decode_upload(read_upload(file), config.max_upload_bytes, config.max_pixels)
            hits = hits_json(engine.image_query(image, k), thumbnails)
        return {"query": file.filename, "k": k, "seconds": round(time.perf_counter() - start, 4), "hits": hits}

    @router.get("/concepts", summary="The concept registry and the archives of each concept")
    def concepts(response: Response) -> list[dict]:
        return listed(catalog.concepts, response)

    @router.get("/archives", summary="Archive runs and their concepts")
    def archive_runs(response: Response) -> list[dict]:
        return listed(catalog.archive_runs, response)

    @router.get("/archives/{model_id}/{run}/{concept}", summary="One concept's archive, a page of ranked items")
    def archive(
        model_id: str,
        run: str,
        concept: str,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        thumbnails: bool = True,
    ) -> dict:
        folder = catalog.archive_folder(config.root, model_id, run, concept)
        query, rows, total = catalog.archive_page(folder, offset, limit)
        if thumbnails:
            for row in rows:
                row["thumbnail"] = thumbs.archive_item(folder, row["rank"], row["id"], row["key"])
        return {"model_id": model_id, "run": run, "slug": concept, "query": query, "total": total, "items": rows}

    @router.get("/banks", summary="Segment banks")
    def banks(response: Response) -> list[dict]:
        return listed(catalog.banks, response)

    @router.get("/segmenters", summary="Registered segmenters and the folders they need")
    def segmenters() -> list[dict]:
        return engine.segmenters()

    @router.post(
        "/segment",
        summary="Segment an uploaded image",
        description="Answers JSON (legend, mask and overlay as PNG data URIs) or, with format=png, the overlay PNG "
        "with the legend in the X-Coarchive-Legend header.",
        responses={200: {"content": {"image/png": {}}}},
    )
    def segment(
        file: Upload,
        segmenter: Annotated[str, Form(min_length=1, max_length=64)] = "reco",
        bank: Annotated[str | None, Form(description="bank run under banks/MODEL_ID/")] = None,
        checkpoint: Annotated[str | None, Form(description="checkpoint folder relative to the data root")] = None,
        concepts: Annotated[str | None, Form(description="comma-separated subset of the concepts")] = None,
        crf: Annotated[bool, Form(description="refine with a dense CRF (segmenters that take crf)")] = False,
        saliency: Annotated[
            bool, Form(description="ReCo's DenseCLIP saliency product (segmenters that take it)")
        ] = True,
        format: Annotated[Literal["json", "png"], Form()] = "json",
    ) -> Response:
        names = available_segmenters()
        if segmenter not in names:
            raise HTTPException(422, f"unknown segmenter {segmenter!r}; available: {', '.join(sorted(names))}")
        key = SegmenterKey(segmenter, bank or None, checkpoint or None, crf, saliency)
        wanted = [c.strip() for c in (concepts or "").split(",") if c.strip()]
        start = time.perf_counter()
        with metrics.timed(metrics.segment_seconds, metrics.segment_failures, segmenter):
            image = decode_upload(read_upload(file), config.max_upload_bytes, config.max_pixels)
            image = scale_down(image, config.segment_side)
            result = engine.segment(key, image, wanted)
            labels, names = result.labels, list(result.concepts)
            keys = legend(result.concepts, labels)
            if format == "png":
                body = png_bytes(overlay_image(image, labels, names))
            else:
                payload = {
                    "segmenter": segmenter,
                    "bank": bank,
                    "width": int(image.shape[1]),
                    "height": int(image.shape[0]),
                    "legend": keys,
                    "mask": png_uri(mask_image(labels, names)),
                    "overlay": png_uri(overlay_image(image, labels, names)),
                }
        if format == "png":
            return Response(body, media_type="image/png", headers={"X-Coarchive-Legend": json.dumps(keys)})
        payload["seconds"] = round(time.perf_counter() - start, 4)
        return Response(json.dumps(payload), media_type="application/json")

    @router.get("/runs", summary="Runs with a manifest")
    def runs(response: Response) -> list[dict]:
        return listed(catalog.runs, response)

    @router.get("/runs/{run}", summary="One run's manifest")
    def manifest(run: str) -> dict:
        return catalog.manifest(config.root, run)

    return router
