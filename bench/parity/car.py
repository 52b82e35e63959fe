"""CaR parity with the official code: both run on the same random-init CLIPs, images and concepts; one table row per
stage (max abs difference, share of identical values or pixels).

    python -m bench.parity.car --official /tmp/official/car [--write-fixture tests/segment/parity/fixtures/car.npz]

--official is a scratch copy of google-research/google-research's clip_as_rnn/ (the files it needs are listed in
docs/parity/car.md); its modules are imported by path with the stand-ins of bench/parity/_car_official.py.
--write-fixture stores the official numbers that tests/segment/parity/test_car_parity.py checks coarchive against.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench.parity import _car_inputs as inputs
from bench.parity import _car_official as official
from bench.parity._cli import parity_parser, refuse, write_fixture

DEFAULT_OFFICIAL = Path("/tmp/official/car")

PROMPT_KINDS = ("blur", "black", "gray", "circle", "rectangle", "contour")


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max()) if np.size(a) else 0.0


def _same(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return 0.0
    return float((a == b).reshape(a.shape[0], -1).all(-1).mean() if a.ndim == 4 else (a == b).mean())


def official_config(root: Path) -> SimpleNamespace:
    """The official VOC config with the parity thresholds and prompts; its templates and background must be ours."""
    from segment.car.settings import CAR_BACKGROUND

    voc = official.voc_config(root)
    if tuple(voc.car.semantic_templates) != inputs.TEMPLATES or tuple(voc.car.bg_cls) != CAR_BACKGROUND:
        raise ValueError("the checkout's configs/voc.yaml templates or bg_cls differ from coarchive's")
    car = SimpleNamespace(
        mask_threshold=inputs.MASK_THRESHOLD,
        confidence_threshold=inputs.CONFIDENCE,
        clipes_threshold=inputs.BOX_THRESHOLD,
        visual_prompt_type=list(inputs.PROMPTS),
        semantic_templates=list(voc.car.semantic_templates),
        bg_cls=list(voc.car.bg_cls),
        bg_factor=1.0,
    )
    return SimpleNamespace(clip=SimpleNamespace(clip_model_name="cam", semantic_clip_model_name="classifier"), car=car)


def official_labels(run: official.OfficialRun, image: np.ndarray) -> dict[str, np.ndarray]:
    """Label maps (0 = background, c + 1 = CONCEPTS[c]) from the official final CAMs: argmax without CRF, the official
    DenseCRF on the RGB image, and what the official PostProcess made (its CRF sees mean-subtracted BGR as uint8)."""
    lut = np.array([0] + [inputs.CONCEPTS.index(c) + 1 for c in run.final_concepts], np.uint8)
    probs = np.concatenate([1 - run.final_cams.max(0, keepdims=True), run.final_cams])  # as PostProcess.apply_crf
    rgb = run.model.post_process.postprocessor(np.array(image), probs.astype(np.float32))
    return {"plain": lut[probs.argmax(0)], "crf_rgb": lut[rgb.argmax(0)], "postprocess": run.labels_postprocess}


def compare(index: int, image: np.ndarray, run: official.OfficialRun, ours: inputs.Run, labels: dict) -> list[tuple]:
    """Table rows (image, stage, max abs diff, identical share) of one image."""
    rows = [(index, "image tokens entering the last block", _diff(run.tokens, ours.tokens), None)]
    for s, (a, b) in enumerate(zip(run.stages, ours.stages, strict=False)):
        tag = f"it {s + 1}"
        rows.append((index, f"{tag} query set", None, float(a.cam_text == b.concepts)))
        if a.cam_text != b.concepts:
            break
        rows += [
            (index, f"{tag} gradCAM (patch grid)", _diff(np.stack(a.cams), b.cams), None),
            (index, f"{tag} CAM boxes", None, _same(np.stack(a.boxes), b.boxes)),
            (index, f"{tag} refined proposals", _diff(a.proposals, b.proposals), None),
            (index, f"{tag} binary masks", None, _same(np.stack(a.masks), b.masks)),
            (
                index,
                f"{tag} prompted images",
                None,
                float(np.mean([inputs.image_digest(p) == q for p, q in zip(a.prompted, b.prompted, strict=True)])),
            ),
            (index, f"{tag} classifier scores", _diff(a.scores, b.scores), None),
            (index, f"{tag} kept queries", None, float(a.kept == b.kept)),
        ]
    rows += [
        (index, "label map, no CRF", None, _same(labels["plain"], ours.labels)),
        (index, "label map, CRF on the RGB image", None, _same(labels["crf_rgb"], ours.labels_crf)),
        (index, "label map vs official PostProcess (BGR bug)", None, _same(labels["postprocess"], ours.labels_crf)),
    ]
    return rows


def prompt_rows(modules: dict, image: np.ndarray, masks: np.ndarray) -> tuple[list[tuple], dict]:
    """Each visual prompt kind drawn by both on the first iteration's masks: identical-pixel share, and the official
    prompted images' digests."""
    from segment.car.visual_prompts import apply_visual_prompts

    rows, digests = [], {}
    for kind in PROMPT_KINDS:
        theirs = [np.array(modules["utils"].apply_visual_prompts(image, m.astype(np.uint8), [kind])) for m in masks]
        ours = [apply_visual_prompts(image, m, (kind,)) for m in masks]
        digests[kind] = [inputs.image_digest(t) for t in theirs]
        share = float(np.mean([(t == o).all(-1).mean() for t, o in zip(theirs, ours, strict=True)]))
        rows.append(("0", f"prompt '{kind}' (it 1 masks)", None, share))
    return rows, digests


def fixture_arrays(index: int, image: np.ndarray, run: official.OfficialRun, labels: dict) -> dict[str, np.ndarray]:
    """The official numbers of one image, named for the fixture."""
    out = {f"image{index}": image, f"tokens{index}": run.tokens, f"final{index}": run.final_cams.astype(np.float32)}
    out[f"final_concepts{index}"] = np.array(run.final_concepts)
    out[f"iterations{index}"] = np.array(len(run.stages))
    for s, st in enumerate(run.stages):
        key = f"{index}_{s}"
        out[f"concepts{key}"] = np.array(st.cam_text)
        out[f"cams{key}"] = np.stack(st.cams).astype(np.float32)
        out[f"boxes{key}"] = np.stack(st.boxes)
        out[f"masks{key}"] = np.packbits(np.stack(st.masks))
        out[f"prompted{key}"] = np.array([inputs.image_digest(p) for p in st.prompted])
        out[f"scores{key}"] = st.scores.astype(np.float32)
        out[f"kept{key}"] = np.array(st.kept)
    for name, value in labels.items():
        out[f"labels_{name}{index}"] = value
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both implementations, print the table, optionally write the fixture."""
    parser = parity_parser("python -m bench.parity.car", __doc__.split("\n\n")[0], DEFAULT_OFFICIAL, "clip_as_rnn/")
    args = parser.parse_args(argv)
    try:
        root = official.check_checkout(args.official)
    except FileNotFoundError as error:
        return refuse(error)
    start = time.time()
    cam, classifier = inputs.parity_clip(inputs.CAM_SEED), inputs.parity_clip(inputs.CLASSIFIER_SEED)
    official.install_stand_ins({"cam": cam, "classifier": classifier})
    modules, model = official.build_official(root, official_config(root))
    seg = inputs.parity_segmenter(cam, classifier, crf=False)
    arrays = {
        "cam_weights": np.array(inputs.weights_digest(cam)),
        "classifier_weights": np.array(inputs.weights_digest(classifier)),
    }
    rows: list[tuple] = []
    for index, image in enumerate(inputs.parity_images()):
        run = official.run_official(modules, model, image, inputs.CONCEPTS)
        labels = official_labels(run, image)
        ours = inputs.coarchive_run(seg, image)
        rows += compare(index, image, run, ours, labels)
        arrays.update(fixture_arrays(index, image, run, labels))
        if index == 0:
            prompts, digests = prompt_rows(modules, image, np.stack(run.stages[0].masks))
            rows += prompts
            arrays.update({f"prompt_{k}": np.array(v) for k, v in digests.items()})
    print(f"CaR parity, official {root} vs coarchive; float64 CLIPs (official CAM refinement and scores in float32)")
    print(f"images {inputs.IMAGE_SIZES}, concepts {inputs.CONCEPTS}, {time.time() - start:.0f} s\n")
    print("| image | stage | max abs diff | identical |")
    print("|---|---|---|---|")
    for index, stage, diff, same in rows:
        diff_text = "" if diff is None else f"{diff:.1e}"
        same_text = "" if same is None else f"{same:.4f}"
        print(f"| {index} | {stage} | {diff_text} | {same_text} |")
    if args.write_fixture is not None:
        write_fixture(args.write_fixture, arrays)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
