"""CaR parity inputs shared by bench/parity/car.py and its fixture test: two small random-init CLIPs (fixed seeds,
float64), the concepts, the settings of both sides, and coarchive's per-stage values for one image."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

# the official CaR reads 16-px patches (img_ms_and_flip) and 77-token texts (CustomTransformer): keep both
VISION = {"image_size": 128, "layers": 4, "width": 64, "head_width": 16, "patch_size": 16}
TEXT = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2}
CAM_SEED, CLASSIFIER_SEED = 0, 1
# random-init attention is near uniform: the affinity then flattens the CAM to 1e-5 of its level and min-max
# normalisation blows float32 rounding (the official refinement runs in float32) up to 1e-2. Query and key weights
# scaled by QK_SCALE give attention as peaked as a trained CLIP's (mean row maximum 0.24 instead of 0.02).
QK_SCALE = 8.0
CONCEPTS = ["cat", "dog", "square", "circle", "star"]  # none is one of the background queries
CAM_TEMPLATE = "a clean origami {}."
# configs/voc.yaml of the official code: classifier templates and the CAM's background queries
TEMPLATES = (
    "a clean origami {}.", "a photo of a {}.", "This is a photo of a {}", "There is a {} in the scene",
    "There is the {} in the scene", "a photo of a {} in the scene", "a photo of a small {}.",
    "a photo of a medium {}.", "a photo of a large {}.", "This is a photo of a small {}.",
    "This is a photo of a medium {}.", "This is a photo of a large {}.", "There is a small {} in the scene.",
    "There is a medium {} in the scene.", "There is a large {} in the scene.",
)  # fmt: skip
MASK_THRESHOLD, BOX_THRESHOLD = 0.4, 0.4
CONFIDENCE = 1 / len(CONCEPTS) + 1e-3  # random CLIPs: keep the above-average queries, so the loop drops some
PROMPTS = ("blur",)  # the prompt both sides draw alike; the others are compared one by one
IMAGE_SIZES = ((128, 128), (120, 136))  # the CLIPs' own input size, and one that is not (CAM grid 8 x 9)


def parity_clip(seed: int):
    """A random-init OpenAI-layout CLIP (quick GELU, 16-px patches, 77 tokens) in float64, as a LoadedModel.

    The positional embedding is rounded to float16 values: the official code rounds it so (clip_wrapper.py), and
    values that are already float16 make that rounding exact at the native grid. The image tower's query and key
    weights are scaled by QK_SCALE.
    """
    import open_clip

    from pipeline.core.models import LoadedModel, ModelRef

    torch.manual_seed(seed)
    model = open_clip.model.CLIP(embed_dim=64, vision_cfg=VISION, text_cfg=TEXT, quick_gelu=True)
    with torch.no_grad():
        pos = model.visual.positional_embedding
        pos.copy_(pos.half().float())
        for block in model.visual.transformer.resblocks:
            weight = block.attn.in_proj_weight  # (3 width, width): query, key, value rows
            weight[: 2 * weight.shape[1]] *= QK_SCALE
    model = model.double().eval()
    preprocess = open_clip.image_transform(VISION["image_size"], is_train=False)
    return LoadedModel(ModelRef(f"car-parity-{seed}"), model, preprocess, open_clip.tokenize, torch.device("cpu"))


def weights_digest(loaded) -> str:
    """sha256 of a model's state dict (names and float64 bytes): the fixture test checks the seed still makes it."""
    h = hashlib.sha256()
    for name, tensor in sorted(loaded.model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def parity_images() -> list[np.ndarray]:
    """Toy-world scenes (fixed seed) resized to IMAGE_SIZES, (H, W, 3) uint8."""
    from PIL import Image

    from pipeline.toy.quality import BENCH_SEED, render_many
    from pipeline.toy.world import WorldSpec

    scenes, _, _ = render_many(WorldSpec(), BENCH_SEED, len(IMAGE_SIZES), workers=1, progress=False)
    return [
        np.asarray(Image.fromarray(scene).resize((w, h), Image.BILINEAR))
        for scene, (h, w) in zip(scenes, IMAGE_SIZES, strict=True)
    ]


def parity_segmenter(cam_clip, classifier_clip, crf: bool = True):
    """coarchive's CaR set as the official VOC pipeline runs (official CAM style and loop, penultimate classifier)."""
    from segment.car.segmenter import CaRSegmenter
    from segment.car.settings import CAR_BACKGROUND

    return CaRSegmenter(
        cam_clip,
        classifier=classifier_clip,
        templates=TEMPLATES,
        cam_templates=(CAM_TEMPLATE,),
        background_queries=CAR_BACKGROUND,
        vocabulary=None,
        crf=crf,
        mask_threshold=MASK_THRESHOLD,
        confidence_threshold=CONFIDENCE,
        box_threshold=BOX_THRESHOLD,
        prompts=PROMPTS,
        classifier_layer="penultimate",
        cam_style="official",
        first_stage_names=True,
    )


def image_digest(image: np.ndarray) -> str:
    """sha1 of an (H, W, 3) uint8 image's shape and bytes."""
    return hashlib.sha1(f"{image.shape}".encode() + np.ascontiguousarray(image, np.uint8).tobytes()).hexdigest()


@dataclass
class Stage:
    """One iteration of a CaR run: the concepts proposed for and what each step made of them."""

    concepts: list[str]
    cams: np.ndarray  # (Q, gh, gw) normalised raw gradCAMs
    boxes: np.ndarray  # (Q, gh, gw) bool, where the affinity propagates from
    proposals: np.ndarray  # (Q, H, W) refined CAMs at the image size
    masks: np.ndarray  # (Q, H, W) bool, proposals above the mask threshold
    prompted: list[str] = field(default_factory=list)  # image_digest of each prompted image
    scores: np.ndarray | None = None  # (Q, Q) classifier scores (row: prompted image, column: concept)
    kept: list[str] = field(default_factory=list)


@dataclass
class Run:
    """A whole CaR run on one image: its stages and the final label maps (0 = background, c + 1 = CONCEPTS[c])."""

    tokens: np.ndarray  # (1 + N, width) tokens entering the last block
    stages: list[Stage]
    labels: np.ndarray  # (H, W) without CRF
    labels_crf: np.ndarray  # (H, W) with coarchive's dense CRF on the RGB image


def coarchive_run(seg, image: np.ndarray) -> Run:
    """Run coarchive's CaR on one image and keep every stage's values (replaying its recurrence step by step)."""
    from segment.car.affinity import box_mask

    concepts = ["background", *CONCEPTS]
    _, queries, background = seg.check(concepts)
    ctx = seg.context(image)
    result = seg.run(image, queries)
    stages = []
    for i, step in enumerate(result.steps):
        names = [queries[q] for q in step.queries]
        first = seg.settings.first_stage_names and i == 0
        cams = seg.cams(ctx, names, names=first)
        proposals = seg.propose(ctx, names, names=first)
        prompted, masks = seg.prompted(ctx, proposals)
        scores = seg.score(ctx, names, proposals)
        stages.append(
            Stage(
                names,
                cams.double().numpy(),
                torch.stack([box_mask(c, seg.settings.box_threshold, seg.settings.cam_style) for c in cams]).numpy(),
                proposals.double().numpy(),
                masks.numpy(),
                [image_digest(p) for p in prompted],
                scores.double().numpy(),
                [queries[q] for q in step.kept],
            )
        )
    saved = seg.use_crf
    try:
        seg.use_crf = False
        plain = seg.assemble(image, concepts, queries, background, result)
        seg.use_crf = True
        with_crf = seg.assemble(image, concepts, queries, background, result)
    finally:
        seg.use_crf = saved
    tokens = ctx.state.tokens[0].double().numpy()
    return Run(tokens, stages, plain.labels.astype(np.uint8), with_crf.labels.astype(np.uint8))
