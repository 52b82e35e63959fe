"""The `car` segmenter (registered on import): CLIP as RNN with batched proposals, one encode per prompted image."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from segment.bank import SegmentBank
from segment.car.affinity import refine_cams, sinkhorn_affinity
from segment.car.bank_evidence import BankEvidence
from segment.car.classifier import MaskClassifier, TemplateBank, query_scores
from segment.car.gradcam import ImageState, cam_pixels, encode_image_state, query_cams
from segment.car.layers import background_channel, crf_layer, merge_layers
from segment.car.recurrence import Recurrence, recur
from segment.car.settings import BACKGROUND_CONCEPT, CAM_TEMPLATES, CAR_BACKGROUND, CarSettings
from segment.car.settings import preset as car_preset
from segment.car.visual_prompts import apply_visual_prompts
from segment.crf import CrfSettings, dense_crf
from segment.segmenter import Protocol, Segmentation, Segmenter, check_concepts, check_image, register_segmenter


def _load(clip: Any, device: torch.device) -> Any:
    """A LoadedModel as given, or loaded from a model reference string."""
    if clip is None:
        raise ValueError("CaR needs a CLIP: clip=LoadedModel or a model reference such as 'toy' or 'ViT-B-16:openai'")
    if isinstance(clip, str):
        from pipeline.core.models import load_model

        return load_model(clip, device=device)
    return clip


def _is_toy(loaded: Any) -> bool:
    from pipeline.core.models import TOY_NAME

    return getattr(getattr(loaded, "ref", None), "name", None) == TOY_NAME


@dataclass
class ImageContext:
    """Per-image work shared by every iteration: ViT state, affinity, bank features, encoded prompted images."""

    image: np.ndarray  # (H, W, 3) uint8
    state: ImageState
    affinity: torch.Tensor  # (N, N)
    bank_features: torch.Tensor | None  # (h, w, d)
    embeddings: dict[str, torch.Tensor]  # binary-mask digest -> (d,) prompted-image embedding


@register_segmenter("car")
class CaRSegmenter(Segmenter):
    """CaR: gradCAM proposals refined by attention affinity, visual-prompt classification with a threshold, repeated
    until the query set stops changing; background channel, optional dense CRF and SAM refinement.

    `clip` proposes masks, `classifier` (default: the same CLIP) scores prompted images. With `bank`, the classifier
    also weighs mask-pooled dense features against the bank's reference embeddings (`bank_weight`). A concept named
    `background` gets the background channel (1 - max CAM)^bg_factor instead of a CAM. `vocabulary` limits the
    concepts accepted (default: the bank's concepts, else any text; a caller whose CLIP knows only some words passes
    them, as the application passes the toy world's classes for the toy CLIP).
    `settings` or a `preset` name (default: 'toy' for the toy CLIP, else CaR's 'voc' thresholds); keyword `options`
    override single fields (e.g. mask_threshold=0.5). Concepts in `stuff` (a setting) run in their own stuff pass,
    side by side with the things', and things are painted over stuff (segment/car/layers.py).
    """

    name = "car"
    protocol = Protocol("whole")

    def __init__(
        self,
        clip: Any,
        classifier: Any = None,
        bank: SegmentBank | str | Path | None = None,
        crf: bool = False,
        device: str | torch.device | None = None,
        settings: CarSettings | None = None,
        preset: str | None = None,
        templates: Sequence[str] | None = None,
        cam_templates: Sequence[str] | None = None,
        background_queries: Sequence[str] | None = None,
        vocabulary: Sequence[str] | None = None,
        sam: Any = None,
        crf_settings: CrfSettings | None = None,
        **options: Any,
    ) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.clip = _load(clip, self.device)
        if settings is not None and preset is not None:
            raise ValueError("give settings or preset, not both")
        if settings is None:
            settings = car_preset(preset or ("toy" if _is_toy(self.clip) else "voc"))
        self.settings = settings.with_options(**options)
        self.classifier_clip = self.clip if classifier is None else _load(classifier, self.device)
        toy = _is_toy(self.clip)
        if templates is None:
            from pipeline.core.text import templates as template_set

            templates = template_set("toy" if _is_toy(self.classifier_clip) else "car")
        if cam_templates is None:
            from pipeline.core.text import templates as template_set

            cam_templates = template_set("toy") if toy else CAM_TEMPLATES
        if background_queries is None:
            background_queries = self.settings.background
        if background_queries is None:
            background_queries = () if toy else CAR_BACKGROUND
        self.background_queries = tuple(background_queries)
        self.cam_text = TemplateBank(self.clip, cam_templates)
        self.name_text = TemplateBank(self.clip, ("{}",))  # the bare names (first_stage_names)
        s = self.settings
        self.cam_scale = _scale(s.logit_scale, self.clip)
        self.classifier = MaskClassifier(
            self.classifier_clip, templates, _scale(s.logit_scale, self.classifier_clip), s.classifier_layer
        )
        self.evidence = BankEvidence(bank, self.clip, temperature=s.bank_temperature) if bank is not None else None
        if vocabulary is None and self.evidence is not None:
            vocabulary = [*self.evidence.bank.concepts, BACKGROUND_CONCEPT]
        self.vocabulary = None if vocabulary is None else set(vocabulary)
        self.use_crf = bool(crf)
        self.crf_settings = crf_settings or CrfSettings()
        self.sam = sam

    # --- per-image work -------------------------------------------------------------------------------------------

    def check(self, concepts: Sequence[str]) -> tuple[list[str], list[str], int | None]:
        """(concepts, text queries, index of the background concept or None); ValueError for unknown concepts."""
        concepts = check_concepts(concepts)
        if self.vocabulary is not None:
            unknown = [c for c in concepts if c not in self.vocabulary]
            if unknown:
                raise ValueError(f"unknown concept {unknown[0]!r}; this CaR knows {', '.join(sorted(self.vocabulary))}")
        background = concepts.index(BACKGROUND_CONCEPT) if BACKGROUND_CONCEPT in concepts else None
        queries = [c for c in concepts if c != BACKGROUND_CONCEPT]
        if self.evidence is not None:
            self.evidence.check(queries)
        return concepts, queries, background

    @torch.no_grad()
    def context(self, image: np.ndarray) -> ImageContext:
        """Encode an image once: last-block tokens, affinity, bank features."""
        visual = self.clip.model.visual
        state = encode_image_state(visual, cam_pixels(visual, image, self.clip.device), self.settings.attention_layers)
        feats = self.evidence.features(image) if self.evidence is not None else None
        return ImageContext(image, state, sinkhorn_affinity(state.attention), feats, {})

    def background_text(self, queries: Sequence[str], words: Sequence[str] | None = None) -> torch.Tensor:
        """(B, d) embeddings of the background queries (`words`, default this CaR's), leaving out any that is one of
        the queries."""
        words = self.background_queries if words is None else words
        names = [b for b in words if b not in set(queries)]
        if not names:
            return torch.zeros(0, int(self.clip.embed_dim))
        return self.cam_text.ensembled(names)

    def cams(
        self, ctx: ImageContext, queries: Sequence[str], names: bool = False, background: Sequence[str] | None = None
    ) -> torch.Tensor:
        """Normalised raw gradCAMs (Q, gh, gw) of `queries` (embedded as bare names if `names`, else with the CAM
        templates) against the `background` words (default: this CaR's background queries)."""
        text = (self.name_text if names else self.cam_text).ensembled(queries)
        background = self.background_text(queries, background)
        return query_cams(self.clip.model.visual, ctx.state, text, background, self.cam_scale, self.settings.cam_style)

    def propose(
        self, ctx: ImageContext, queries: Sequence[str], names: bool = False, background: Sequence[str] | None = None
    ) -> torch.Tensor:
        """Refined CAMs (Q, H, W) in [0, 1] of all `queries` at once, at the image's size."""
        s = self.settings
        cams = self.cams(ctx, queries, names, background)
        refined = refine_cams(cams, ctx.affinity, s.box_threshold, s.cam_style)  # (Q, gh, gw)
        return upsample(refined, ctx.image.shape[:2])

    def prompted(
        self, ctx: ImageContext, proposals: torch.Tensor, prompts: Sequence[str] | None = None
    ) -> tuple[list[np.ndarray], torch.Tensor]:
        """Each proposal's visual-prompted image (with `prompts`, default the setting's) and binary mask (P, H, W)."""
        s = self.settings
        prompts = s.prompts if prompts is None else prompts
        masks = proposals > s.mask_threshold
        images = [apply_visual_prompts(ctx.image, m.numpy(), prompts, blur_sigma=s.blur_sigma) for m in masks]
        return images, masks

    def score(
        self, ctx: ImageContext, queries: Sequence[str], proposals: torch.Tensor, prompts: Sequence[str] | None = None
    ) -> torch.Tensor:
        """Mask scores (P, Q): each proposal's prompted image over the queries; identical masks with the same
        prompts are encoded once per image, across iterations."""
        prompts = tuple(self.settings.prompts if prompts is None else prompts)
        images, masks = self.prompted(ctx, proposals, prompts)
        keys = ["+".join(prompts) + "|" + _digest(m) for m in masks]
        new = [i for i, k in enumerate(keys) if k not in ctx.embeddings]
        if new:
            from segment.car.classifier import encode_images

            emb = encode_images(self.classifier_clip, [images[i] for i in new], self.settings.classifier_layer)
            for i, e in zip(new, emb, strict=True):
                ctx.embeddings[keys[i]] = e
        embeddings = torch.stack([ctx.embeddings[k] for k in keys])  # (P, d)
        summed = _summed(self.classifier, embeddings, queries)
        return query_scores(summed, *self._evidence(ctx, masks, queries))

    def _evidence(self, ctx: ImageContext, masks: torch.Tensor, queries: Sequence[str]) -> tuple[Any, float]:
        """(bank evidence (P, Q) or None, its weight in template units)."""
        if self.evidence is None or ctx.bank_features is None:
            return None, 0.0
        weight = self.settings.bank_weight * len(self.classifier.text.templates)
        return self.evidence.scores(ctx.bank_features, masks, queries), weight

    def groups(self, queries: Sequence[str]) -> list[int] | None:
        """Per query 1 (the stuff pass) or 0 (the thing pass) when some query is stuff; None: a single pass."""
        groups = [int(q in self.settings.stuff) for q in queries]
        return groups if any(groups) else None

    def run(self, image: np.ndarray, queries: Sequence[str]) -> Recurrence[torch.Tensor]:
        """CaR's recurrence on one image: the final queries (indices into `queries`), their proposals, the steps.

        With stuff among the queries the thing and stuff passes run side by side: each iteration proposes and
        keeps things and stuff apart (the stuff CAMs compete with every thing asked, not the background words; each
        classifier only with its own pass's queries), and the loop ends when both sets are stable."""
        ctx = self.context(image)
        s = self.settings
        groups = self.groups(queries)
        things = [q for q, g in zip(queries, groups or [], strict=False) if not g]
        calls = []

        def passes(active: list[int]) -> list[list[int]]:
            """Rows of `active` per pass: [all] for a single pass, else [thing rows, stuff rows]."""
            if groups is None:
                return [list(range(len(active)))]
            return [[r for r, i in enumerate(active) if groups[i] == g] for g in (0, 1)]

        def propose(active: list[int]) -> torch.Tensor:
            calls.append(active)
            names = s.first_stage_names and len(calls) == 1
            parts = {}
            for g, rows in enumerate(passes(active)):
                if rows:
                    words = things if g == 1 else None  # the stuff pass's background: the things asked
                    maps = self.propose(ctx, [queries[active[r]] for r in rows], names, words)
                    parts.update(zip(rows, maps, strict=True))
            return torch.stack([parts[r] for r in range(len(active))])  # (len(active), H, W)

        def classify(active: list[int], proposals: torch.Tensor) -> list[float]:
            scores = [0.0] * len(active)
            for g, rows in enumerate(passes(active)):
                if rows:
                    prompts = s.stuff_prompts if g == 1 else None
                    mine = self.score(ctx, [queries[active[r]] for r in rows], proposals[rows], prompts)
                    for r, value in zip(rows, mine.diagonal().tolist(), strict=True):
                        scores[r] = value
            return scores

        minimum = 2 if s.first_stage_names else 1
        return recur(len(queries), propose, classify, s.confidence_threshold, s.max_iterations, minimum, groups)

    # --- output ---------------------------------------------------------------------------------------------------

    def assemble(
        self, image: np.ndarray, concepts: list[str], queries: list[str], background: int | None, result: Recurrence
    ) -> Segmentation:
        """Score maps (C, H, W) from the final proposals (dropped concepts 0), the background channel, optional CRF
        and SAM, and the argmax labels."""
        h, w = image.shape[:2]
        if self.groups(queries) is not None:
            scores = self._layered(image, concepts, queries, background, result)
            return self._finish(image, concepts, scores)
        scores = torch.zeros(len(concepts), h, w)
        for row, q in enumerate(result.queries):
            scores[concepts.index(queries[q])] = result.proposals[row].float()
        if background is not None:
            peak = result.proposals.float().amax(0) if len(result.queries) else torch.zeros(h, w)
            scores[background] = (1 - peak).clamp_min(0) ** self.settings.bg_factor
        if self.use_crf:
            probs = scores.clamp_min(1e-8)
            scores = torch.from_numpy(dense_crf(image, probs / probs.sum(0, keepdim=True), self.crf_settings))
        return self._finish(image, concepts, scores)

    def _layered(
        self, image: np.ndarray, concepts: list[str], queries: list[str], background: int | None, result: Recurrence
    ) -> torch.Tensor:
        """Scores (C, H, W) of the thing and stuff layers (each with its own background channel and, optionally, its
        own CRF, as the official code), things painted over stuff; dropped concepts 0."""
        groups = self.groups(queries)
        rows = [[r for r, q in enumerate(result.queries) if groups[q] == g] for g in (0, 1)]
        proposals = result.proposals.float()
        things, stuff = proposals[rows[0]], proposals[rows[1]]  # (T, H, W), (S, H, W)
        thing_layer = torch.cat([background_channel(things, self.settings.bg_factor)[None], things])
        stuff_layer = stuff
        if background is not None:
            stuff_layer = torch.cat([stuff, background_channel(stuff, self.settings.stuff_bg_factor)[None]])
        if self.use_crf:
            thing_layer = crf_layer(image, thing_layer, self.crf_settings)
            stuff_layer = crf_layer(image, stuff_layer, self.crf_settings)
        merged = merge_layers(thing_layer[1:], thing_layer[0], stuff_layer)  # (T + S (+ 1), H, W)
        order = [result.queries[r] for r in rows[0] + rows[1]]
        scores = torch.zeros(len(concepts), *image.shape[:2])
        for channel, q in enumerate(order):
            scores[concepts.index(queries[q])] = merged[channel]
        if background is not None:
            scores[background] = merged[-1]
        return scores

    def _finish(self, image: np.ndarray, concepts: list[str], scores: torch.Tensor) -> Segmentation:
        """Optional SAM refinement of scores (C, H, W), then the argmax labels."""
        if self.sam is not None:
            from segment.car.sam import sam_refine

            scores = sam_refine(self.sam, image, scores, self.settings.sam_iou)
        scores = scores.float().contiguous()
        return Segmentation(concepts, scores, scores.argmax(0).numpy().astype(np.int64))

    def segment(self, image: np.ndarray, concepts: Sequence[str]) -> tuple[Segmentation, Recurrence | None]:
        """One image's segmentation and its recurrence (None when only the background concept was asked for)."""
        image = check_image(image)
        concepts, queries, background = self.check(concepts)
        if not queries:
            h, w = image.shape[:2]
            return Segmentation(concepts, torch.ones(1, h, w), np.zeros((h, w), np.int64)), None
        result = self.run(image, queries)
        return self.assemble(image, concepts, queries, background, result), result

    def predict_batch(self, images: Sequence[np.ndarray], concepts: Sequence[str]) -> list[Segmentation]:
        """Segment each (H, W, 3) uint8 image into `concepts` (each image runs its own recurrence)."""
        images = [check_image(im) for im in images]
        self.check(concepts)
        return [self.segment(image, concepts)[0] for image in images]


def _scale(logit_scale: float | None, loaded: Any) -> float:
    """The logit scale given, or the CLIP's own learned one."""
    if logit_scale is not None:
        return float(logit_scale)
    return float(loaded.model.logit_scale.detach().exp().item())


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(Q, h, w) maps bilinearly resized to (Q, H, W), clamped to [0, 1]."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)


def _digest(mask: torch.Tensor) -> str:
    """A key for a binary mask (its shape and bits)."""
    bits = np.packbits(mask.numpy().astype(bool))
    return f"{tuple(mask.shape)}:{hashlib.sha1(bits.tobytes()).hexdigest()}"


def _summed(classifier: MaskClassifier, embeddings: torch.Tensor, queries: Sequence[str]) -> torch.Tensor:
    """Template-summed probabilities (P, Q) of already-encoded prompted images."""
    from segment.car.classifier import template_scores

    return template_scores(embeddings, classifier.text.per_template(queries), classifier.logit_scale)
