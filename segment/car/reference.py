"""CaR in the official code's structure, for the bench and the identical-masks test: per stage the image is encoded
again, per query one gradCAM pass and one affinity, per query and template one classifier pass and one text pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from segment.car.affinity import refine_cams, sinkhorn_affinity
from segment.car.classifier import encode_images, encode_sentences, query_scores
from segment.car.gradcam import cam_pixels, encode_image_state, gradcam, normalise_maps
from segment.car.recurrence import Recurrence, Step, keep_confident
from segment.car.segmenter import CaRSegmenter, upsample
from segment.car.visual_prompts import apply_visual_prompts
from segment.segmenter import Segmentation, check_image


def reference_proposals(seg: CaRSegmenter, image: np.ndarray, queries: Sequence[str]) -> torch.Tensor:
    """Refined CAMs (Q, H, W), one query at a time, everything recomputed (as one official stage does)."""
    s, visual = seg.settings, seg.clip.model.visual
    state = encode_image_state(visual, cam_pixels(visual, image, seg.clip.device), s.attention_layers)
    text = torch.nn.functional.normalize(
        torch.stack(
            [encode_sentences(seg.clip, [t.format(q) for t in seg.cam_text.templates]).mean(0) for q in queries]
        ),
        dim=-1,
    )  # (Q, d)
    names = [b for b in seg.background_queries if b not in set(queries)]
    background = (
        torch.nn.functional.normalize(
            torch.stack(
                [encode_sentences(seg.clip, [t.format(b) for t in seg.cam_text.templates]).mean(0) for b in names]
            ),
            dim=-1,
        )
        if names
        else torch.zeros(0, text.shape[1])
    )
    out = []
    for i in range(len(queries)):
        cam = gradcam(visual, state.tokens, state.grid, text, background, [i], seg.cam_scale)
        if float(cam.max()) == 0.0 and len(background):
            cam = gradcam(visual, state.tokens, state.grid, text, background[:0], [i], seg.cam_scale)
        affinity = sinkhorn_affinity(state.attention)  # the official code rebuilds it for every query
        refined = refine_cams(normalise_maps(cam), affinity, s.box_threshold)
        out.append(upsample(refined, image.shape[:2])[0])
    return torch.stack(out)


def reference_scores(
    seg: CaRSegmenter, image: np.ndarray, queries: Sequence[str], proposals: torch.Tensor
) -> list[float]:
    """Each proposal's own score: its prompted image re-encoded for every template, against that template's texts."""
    s, clf = seg.settings, seg.classifier
    own = []
    for i, proposal in enumerate(proposals):
        mask = proposal > s.mask_threshold
        prompted = apply_visual_prompts(image, mask.numpy(), s.prompts, blur_sigma=s.blur_sigma)
        summed = torch.zeros(len(queries))
        for template in clf.text.templates:
            embedding = encode_images(seg.classifier_clip, [prompted], s.classifier_layer)  # (1, d), every template
            texts = encode_sentences(seg.classifier_clip, [template.format(q) for q in queries])  # (Q, d)
            summed = summed + torch.softmax(clf.logit_scale * embedding[0] @ texts.T, dim=-1)
        evidence, weight = None, 0.0
        if seg.evidence is not None:
            features = seg.evidence.features(image)  # dense features of the image, again for every proposal
            evidence = seg.evidence.scores(features, mask[None], queries)
            weight = s.bank_weight * len(clf.text.templates)
        own.append(float(query_scores(summed[None], evidence, weight)[0, i]))
    return own


def reference_run(seg: CaRSegmenter, image: np.ndarray, queries: Sequence[str]) -> Recurrence[torch.Tensor]:
    """The official loop: stage after stage until the kept set equals the proposed one (or the cap)."""
    s = seg.settings
    active = list(range(len(queries)))
    steps: list[Step] = []
    for _ in range(s.max_iterations):
        proposals = reference_proposals(seg, image, [queries[i] for i in active])
        scores = reference_scores(seg, image, [queries[i] for i in active], proposals)
        kept = keep_confident(active, scores, s.confidence_threshold)
        steps.append(Step(active, scores, kept))
        if kept == active:
            return Recurrence(active, proposals, steps, "stable")
        active = kept
    return Recurrence(active, reference_proposals(seg, image, [queries[i] for i in active]), steps, "cap")


def reference_segment(seg: CaRSegmenter, image: np.ndarray, concepts: Sequence[str]) -> Segmentation:
    """One image segmented by the reference loop, with the segmenter's own settings and post-processing."""
    image = check_image(image)
    concepts, queries, background = seg.check(concepts)
    return seg.assemble(image, concepts, queries, background, reference_run(seg, image, queries))
