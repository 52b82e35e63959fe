"""ReCo parity: coarchive against the official NoelShin/reco code, stage by stage, on the same weights and inputs.

    python -m bench.parity.reco --official /tmp/official/reco
    python -m bench.parity.reco --official /tmp/official/reco --write-fixture tests/segment/parity/fixtures/reco.npz

Prints one markdown table: per stage the largest absolute difference and the share of identical values (pixels,
seeds). Three runs: the isolated stages on fixed float64 features (the DenseCLIP features are inputs on both sides:
the official DenseCLIP is ResNet-only), the same with the official encoder's raw (not unit) features, and end to end
from pixels with the tiny DeiT on both sides (float32). docs/parity/reco.md explains every row.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.parity import _reco_inputs as inp
from bench.parity._cli import parity_parser, refuse, write_fixture

DEFAULT_OFFICIAL = Path("/tmp/official/reco")
FIXTURE = Path(__file__).resolve().parents[2] / "tests/segment/parity/fixtures/reco.npz"
COMMAND = (
    "python -m bench.parity.reco --official /tmp/official/reco --write-fixture tests/segment/parity/fixtures/reco.npz"
)


class TableEncoder:
    """A coarchive DenseEncoder stand-in: each image's fixed features (N, h, w, d), found by the bytes of the image."""

    def __init__(self, table: dict[str, torch.Tensor], name: str) -> None:
        self.table, self.name = table, name
        self.input_size = inp.TINY["img_size"]
        self.dim = int(next(iter(table.values())).shape[-1])

    def encode(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """The stored features of each image, stacked."""
        return torch.stack([self.table[inp.image_key(im)] for im in images])

    def alias(self, image: np.ndarray, like: np.ndarray) -> None:
        """Give `image` the features of `like`."""
        self.table[inp.image_key(image)] = self.table[inp.image_key(like)]


def coarchive_encoder(state: dict[str, torch.Tensor], folder: Path) -> Any:
    """coarchive's timm encoder of the tiny DeiT, loading `state` written as an official checkpoint ({'model': ...})."""
    from segment.dense_encoders import TimmDenseEncoder

    ckpt = folder / "deit_tiny_official.pth"
    torch.save({"model": state}, ckpt)
    t = inp.TINY
    arch = {k: t[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio")}
    return TimmDenseEncoder(inp.TIMM_NAME, checkpoint=ckpt, input_size=t["img_size"], **arch)


@torch.no_grad()
def run_coarchive(encoder: Any, saliency: Any, text: dict[str, torch.Tensor], seed_rule: str = "paper") -> dict:
    """coarchive's build_bank and ReCoSegmenter on the parity archives and query image; every stage's output."""
    import segment.cosegment as co
    from segment.reco import ReCoSegmenter

    archives = [co.ConceptImages(c, inp.archive_images(c), text[c], context=c in inp.CONTEXT) for c in inp.CONCEPTS]
    calls: list[tuple[torch.Tensor, Any]] = []
    cosegment = co.cosegment

    def spy(features: torch.Tensor, weights: torch.Tensor | None = None, **kwargs: Any) -> Any:
        result = cosegment(features, weights, **kwargs)
        calls.append((weights, result))
        return result

    co.cosegment = spy
    try:
        bank = co.build_bank(archives, encoder, saliency, lgc=True, ce=True, seed_rule=seed_rule)
    finally:
        co.cosegment = cosegment
    out: dict[str, Any] = {"weights": {}, "seeds": {}, "reference": {}, "lgc": {}, "bank": bank}
    for i, (weights, result) in zip(co.build_order(archives), calls, strict=True):
        c = inp.CONCEPTS[i]
        out["weights"][c], out["seeds"][c], out["reference"][c] = weights, result.seeds.numpy(), result.reference
        clip = saliency.encode(inp.archive_images(c))
        out["lgc"][c] = co.lgc_weights(clip, text[c], (inp.GRID, inp.GRID))
    query = inp.query_image()
    for crf in (False, True):
        reco = ReCoSegmenter(bank, encoder=encoder, saliency=False, crf=crf, device="cpu")
        reco.saliency_encoder, reco.text = saliency, torch.stack([text[c] for c in bank.concepts])
        seg = reco.predict(query, list(inp.TARGETS))
        key = "crf" if crf else "plain"
        out[f"{key}_scores"], out[f"{key}_labels"] = seg.scores, seg.labels
        if crf and isinstance(encoder, TableEncoder) and isinstance(saliency, TableEncoder):
            rt = inp.official_crf_image(query)  # the same scores, the CRF on the official's round-tripped pixels
            encoder.alias(rt, query)
            saliency.alias(rt, query)
            out["crf_probs_official_image"] = reco.predict(rt, list(inp.TARGETS)).scores
    out.update(dt=out.pop("plain_scores"), labels=out.pop("plain_labels"))
    out.update(crf_probs=out.pop("crf_scores"), crf_labels=out.pop("crf_labels"))
    return out


def _max_abs(a: Any, b: Any) -> float:
    return float(
        (torch.as_tensor(np.asarray(a), dtype=torch.float64) - torch.as_tensor(np.asarray(b), dtype=torch.float64))
        .abs()
        .max()
    )


def _same(a: Any, b: Any) -> float:
    return float((np.asarray(a) == np.asarray(b)).mean())


def stage_rows(run: str, official: dict, ours: dict) -> list[tuple[str, str, str, str]]:
    """Table rows (run, stage, max abs diff, identical share) for one pair of runs."""
    rows = []
    for stage in ("lgc", "weights", "reference"):
        diff = max(_max_abs(official[stage][c], ours[stage][c]) for c in official[stage])
        rows.append((run, stage, f"{diff:.1e}", "-"))
    seeds = np.mean([(official["seeds"][c] == ours["seeds"][c]).all(1).mean() for c in official["seeds"]])
    rows.append((run, "seeds", "-", f"{seeds:.4f}"))
    refs = torch.stack([official["reference"][c] for c in ours["bank"].concepts if c in official["reference"]])
    rows.append((run, "bank references (float32)", f"{_max_abs(refs, ours['bank'].references[: len(refs)]):.1e}", "-"))
    rows.append((run, "product maps", f"{_max_abs(official['dt'], ours['dt']):.1e}", "-"))
    rows.append((run, "label map", "-", f"{_same(official['labels'], ours['labels']):.4f}"))
    rows.append((run, "CRF probabilities", f"{_max_abs(official['crf_probs'], ours['crf_probs']):.1e}", "-"))
    rows.append((run, "CRF label map", "-", f"{_same(official['crf_labels'], ours['crf_labels']):.4f}"))
    if "crf_probs_official_image" in ours:
        diff = _max_abs(official["crf_probs"], ours["crf_probs_official_image"])
        rows.append((run, "CRF probabilities, official's pixels", f"{diff:.1e}", "-"))
    return rows


def fixture_arrays(official: dict, raw: dict, e2e: dict, features: torch.Tensor, shapes: dict) -> dict[str, Any]:
    """What the fixture test needs: the official outputs of every run, the encoder's features and the input checks."""
    arrays: dict[str, Any] = {"command": np.array(COMMAND), "shapes": np.array(json.dumps(shapes))}
    si = inp.stage_inputs()
    arrays["input_checksums"] = np.array(
        [inp.checksum(si.raw[k]) for k in sorted(si.raw)] + [inp.checksum(si.clip[k]) for k in sorted(si.clip)]
    )
    arrays["encoder_features"] = features.numpy()
    for prefix, result in (("", official), ("raw_", raw), ("e2e_", e2e)):
        for stage in ("weights", "seeds", "reference", "lgc"):
            for c, value in result[stage].items():
                arrays[f"{prefix}{stage}__{c}"] = np.asarray(value)
        for key in ("dt", "labels", "crf_probs", "crf_labels"):
            arrays[f"{prefix}{key}"] = np.asarray(result[key])
    return arrays


def main(argv: Sequence[str] | None = None) -> int:
    """Run both implementations, print the parity table; optionally write the official outputs as the fixture."""
    parser = parity_parser("python -m bench.parity.reco", __doc__.splitlines()[0], DEFAULT_OFFICIAL, "NoelShin/reco")
    args = parser.parse_args(argv)
    from bench.parity import _reco_official as off

    try:
        ns = off.load_official(args.official)
    except FileNotFoundError as error:
        return refuse(error)
    torch.manual_seed(0)
    si = inp.stage_inputs()
    unit = {k: si.unit(k) for k in si.raw}
    images = [im for c in inp.CONCEPTS for im in inp.archive_images(c)] + [inp.query_image()]
    encoder, state = off.official_encoder(ns)
    with contextlib.redirect_stdout(io.StringIO()):  # the official code prints its progress
        official = off.run_official(ns, off.Lookup(unit, images), si.clip, si.text)
        raw = off.run_official(ns, off.Lookup(si.raw, images), si.clip, si.text)
        e2e = off.run_official(ns, encoder, si.clip, si.text)
    probe = [inp.query_image(), inp.archive_images("cat")[0]]
    with torch.no_grad():
        features = encoder(inp.pixels(probe)).permute(0, 2, 3, 1).contiguous()  # (2, h, w, d) raw
    if args.write_fixture is not None:
        shapes = {k: list(v.shape) for k, v in state.items()}
        write_fixture(args.write_fixture, fixture_arrays(official, raw, e2e, features, shapes))
    saliency = TableEncoder(si.clip, "denseclip-table")
    with tempfile.TemporaryDirectory() as tmp:
        ours_encoder = coarchive_encoder(state, Path(tmp))
    rows = [
        (
            "encoder",
            "features (unit, float32)",
            f"{_max_abs(torch.nn.functional.normalize(features, dim=-1), ours_encoder.encode(probe)):.1e}",
            "-",
        )
    ]
    table = TableEncoder(unit, "table")
    for rule in ("official", "paper"):
        ours = run_coarchive(table, saliency, si.text, seed_rule=rule)
        rows += stage_rows(f"float64, seed rule {rule}", official, ours)
    ours = run_coarchive(table, saliency, si.text, seed_rule="official")
    rows += [
        r
        for r in stage_rows("official fed raw features", raw, ours)
        if r[1] in ("seeds", "reference", "label map", "CRF label map")
    ]
    for rule in ("official", "paper"):
        ours = run_coarchive(ours_encoder, saliency, si.text, seed_rule=rule)
        rows += [
            r
            for r in stage_rows(f"end to end, seed rule {rule}", e2e, ours)
            if r[1] in ("seeds", "reference", "label map", "CRF label map")
        ]
    print("| run | stage | max abs diff | identical |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
