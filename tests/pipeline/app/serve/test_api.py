"""The serve API over a toy data root: queries, archives, banks, segmentation, manifests, metrics and OpenAPI."""

from __future__ import annotations

import base64
import io
import itertools
import json
from pathlib import Path

import numpy as np
from PIL import Image

from archives.toy_quality import load_truth


def bench_image(root: Path, n: int = 0) -> tuple[bytes, np.ndarray, list[str]]:
    """A benchmark image's JPEG bytes, its truth mask (H, W) and the class names of the mask's indices."""
    bench = root / "benchmark"
    name = sorted((bench / "images").iterdir())[n].stem
    mask = np.asarray(Image.open(bench / "masks" / f"{name}.png"))
    return (bench / "images" / f"{name}.jpg").read_bytes(), mask, (bench / "classes.txt").read_text().split()


def decode_uri(uri: str) -> np.ndarray:
    """An (H, W, 3) uint8 array from an image data URI."""
    head, _, data = uri.partition(",")
    assert head.startswith("data:image/")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_info_names_model_and_index(client):
    info = client.get("/api/info").json()
    assert info["model_id"] == "toy" and info["index"]["count"] == 300 and info["auth"] is False
    assert info["index"]["deep"] is None  # 300 vectors: too few to tune a deeper nprobe than the top-100's


def test_text_query_finds_the_concept_with_thumbnails(client, serve_root):
    truth = load_truth(serve_root / "toy_truth")
    result = client.get("/api/query", params={"text": "star", "k": 10}).json()
    hits = result["hits"]
    assert [h["rank"] for h in hits] == list(range(1, 11))
    assert all(a["score"] >= b["score"] for a, b in itertools.pairwise(hits))
    assert sum("star" in truth[h["key"]] for h in hits) >= 7  # precision@10 floor on the toy world
    assert decode_uri(hits[0]["thumbnail"]).shape == (96, 96, 3)
    bare = client.get("/api/query", params={"text": "star", "k": 3, "thumbnails": "false"}).json()
    assert [h["thumbnail"] for h in bare["hits"]] == [None] * 3


def test_image_query_returns_the_image_itself_first(client, serve_root):
    import pyarrow.parquet as pq

    from pipeline.app.serve.images import read_member

    key = pq.read_table(serve_root / "embeddings" / "toy" / "00000.parquet").column("key")[5].as_py()
    data = read_member(serve_root / "pool" / "00000.tar", key)
    result = client.post("/api/query/image", files={"file": ("q.jpg", data, "image/jpeg")}, data={"k": "5"}).json()
    assert result["hits"][0]["key"] == key and result["hits"][0]["score"] > 0.99


def test_concepts_and_archive_listing(client):
    concepts = {c["name"]: c for c in client.get("/api/concepts").json()}
    assert {"grass", "star", "heart"} <= set(concepts)
    assert concepts["grass"]["context"] is True and concepts["star"]["archives"][0]["run"] == "toy"
    runs = client.get("/api/archives").json()
    assert [(r["model_id"], r["run"]) for r in runs] == [("toy", "toy")]
    assert {c["slug"] for c in runs[0]["concepts"]} == set(concepts)


def test_archive_page_is_ranked_with_scores_and_thumbnails(client):
    first = client.get("/api/archives/toy/toy/circle", params={"limit": 10}).json()
    assert first["query"]["concept"] == "circle" and first["total"] == 16
    items = first["items"]
    assert [i["rank"] for i in items] == list(range(1, 11))
    assert all(a["score"] >= b["score"] for a, b in itertools.pairwise(items))
    assert all(decode_uri(i["thumbnail"]).shape[2] == 3 for i in items)
    rest = client.get("/api/archives/toy/toy/circle", params={"offset": 10, "limit": 10}).json()["items"]
    assert [i["rank"] for i in rest] == list(range(11, 17))


def test_banks_and_segmenters(client):
    banks = client.get("/api/banks").json()
    assert banks[0]["run"] == "toy" and "star" in banks[0]["concepts"]
    segmenters = {s["name"]: s for s in client.get("/api/segmenters").json()}
    assert segmenters["reco"]["needs"] == ["bank"] and segmenters["reco"]["usable"]
    assert segmenters["reco-plus"]["takes"] == ["checkpoint"]


def test_segment_returns_mask_overlay_and_legend_that_agree(client, serve_root):
    data, truth, classes = bench_image(serve_root)
    answer = client.post("/api/segment", files={"file": ("a.jpg", data, "image/jpeg")}, data={"bank": "toy"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    legend = result["legend"]
    assert abs(sum(k["fraction"] for k in legend) - 1) < 1e-4
    mask = decode_uri(result["mask"])
    assert mask.shape == (result["height"], result["width"], 3) == (*truth.shape, 3)
    for key in legend:  # every pixel has its label's legend colour, in the legend's proportion
        share = np.all(mask == np.array(key["rgb"], np.uint8), axis=-1).mean()
        assert abs(share - key["fraction"]) < 1e-3, key
    labels = np.array([k["concept"] for k in legend])[np.argmax(np.all(mask[..., None, :] == _rgbs(legend), -1), -1)]
    assert (labels == np.array(classes)[truth]).mean() > 0.6  # pixel accuracy floor of ReCo on a toy image
    overlay = decode_uri(result["overlay"]).astype(int)
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert np.abs(overlay - (image + mask) / 2).mean() < 2 < np.abs(overlay - image).mean()


def _rgbs(legend: list[dict]) -> np.ndarray:
    return np.array([k["rgb"] for k in legend], np.uint8)


def test_segment_subset_of_concepts_and_png_format(client, serve_root):
    data, _, _ = bench_image(serve_root, 1)
    form = {"bank": "toy", "concepts": "sky, grass, sand,water,brick,star", "format": "png"}
    answer = client.post("/api/segment", files={"file": ("a.jpg", data, "image/jpeg")}, data=form)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    legend = json.loads(answer.headers["x-coarchive-legend"])
    assert [k["concept"] for k in legend] == ["sky", "grass", "sand", "water", "brick", "star"]
    assert Image.open(io.BytesIO(answer.content)).size == (96, 96)


def test_segmenter_built_once_and_reused(client, engine, serve_root):
    from pipeline.app.serve.engine import SegmenterKey

    data, _, _ = bench_image(serve_root)
    for _ in range(2):
        client.post("/api/segment", files={"file": ("a.jpg", data, "image/jpeg")}, data={"bank": "toy"})
    assert engine.segmenter(SegmenterKey("reco", "toy")) is engine.segmenter(SegmenterKey("reco", "toy"))
    form = {"bank": "toy", "saliency": "false", "crf": "true"}
    answer = client.post("/api/segment", files={"file": ("a.jpg", data, "image/jpeg")}, data=form)
    assert answer.status_code == 200
    variant = engine.segmenter(SegmenterKey("reco", "toy", crf=True, saliency=False))
    assert variant.use_crf and not variant.use_saliency


def test_a_bank_rewritten_on_disk_is_loaded_again(engine, serve_root):
    """A nightly run may rewrite a bank the server has cached: the next request uses the new one."""
    import shutil

    import torch

    from pipeline.app.serve.engine import SegmenterKey
    from segment.bank import SegmentBank

    folder = serve_root / "banks" / "toy" / "rewritten"
    shutil.copytree(serve_root / "banks" / "toy" / "toy", folder)
    try:
        key = SegmenterKey("reco", "rewritten")
        first = engine.segmenter(key)
        assert engine.segmenter(key) is first
        bank = SegmentBank.load(folder)
        bank.references = torch.flip(bank.references, [0])  # (C, d): concepts' references swapped around
        bank.save(folder)
        second = engine.segmenter(key)
        assert second is not first and torch.equal(second.bank.references, bank.references)
        assert engine.segmenter(key) is second
    finally:
        shutil.rmtree(folder)


def test_runs_and_manifest(client):
    assert client.get("/api/runs").json() == [{"run": "toy", "stages": ["embed"]}]
    manifest = client.get("/api/runs/toy").json()
    assert manifest["stages"]["embed"]["counts"]["embedded"] == 300


def test_metrics_count_query_and_segment_latency(client, serve_root):
    data, _, _ = bench_image(serve_root)
    client.get("/api/query", params={"text": "ring", "k": 3})
    client.post("/api/segment", files={"file": ("a.jpg", data, "image/jpeg")}, data={"bank": "toy"})
    text = client.get("/metrics").text
    assert 'coarchive_query_seconds_count{kind="text"} 1.0' in text
    assert 'coarchive_segment_seconds_count{segmenter="reco"} 1.0' in text
    assert 'coarchive_http_requests_total{method="GET",route="/api/query",status="200"} 1.0' in text


def test_openapi_documents_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/query", "/api/query/image", "/api/archives/{model_id}/{run}/{concept}", "/api/segment"):
        assert path in paths
    docs = client.get("/docs")
    assert docs.status_code == 200 and "//" not in docs.text.replace("://testserver", "")  # nothing from elsewhere
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
    assert client.get("/redoc").status_code == 404


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200
