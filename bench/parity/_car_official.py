"""The official CaR modules, imported by path from a scratch checkout of google-research/clip_as_rnn, with stand-ins
for what they need and cannot have here (OpenAI's `clip` package and its weight download, utils.visualize).

Nothing of the official code is copied: its files are executed from the checkout. `STOOD_IN` lists every symbol
replaced and what the replacement does; docs/parity/car.md repeats it. The run is recorded stage by stage through
wrappers that only copy values on their way (no official function is changed).
"""

from __future__ import annotations

import copy
import importlib
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from torch import nn

STOOD_IN = {
    "clip.load(name, device)": "returns a deep copy of the parity CLIP registered under that name (an open_clip "
    "model of OpenAI's layout: its nn.MultiheadAttention modules set to batch_first=False and each text block given "
    "the causal attn_mask, as OpenAI's CLIP keeps them) and OpenAI's eval transform (Resize(n_px, bicubic), "
    "CenterCrop(n_px), RGB, ToTensor, Normalize with OpenAI's mean and std); no download",
    "clip.tokenize": "open_clip.tokenize (the same BPE and 77-token context as OpenAI's tokenizer)",
    "utils.visualize.viz_attn": "a no-op (only called with visualize=True, which the run does not set)",
    "modeling/__init__.py, modeling/model/__init__.py": "not executed (the latter imports an older CamCut module the "
    "pipeline does not use); modeling.model.* files are loaded as plain modules of namespace packages",
}
MODULES = ("cam", "utils", "clip_wrapper", "clipcam", "crf", "car")  # modeling/model/*.py, in import order
FILES = [f"modeling/model/{m}.py" for m in MODULES] + ["configs/voc.yaml"]


def check_checkout(root: Path) -> Path:
    """`root` if it holds the official files this harness runs; FileNotFoundError naming the first missing one."""
    root = Path(root).expanduser()
    for name in FILES:
        if not (root / name).is_file():
            raise FileNotFoundError(f"not a CaR checkout (clip_as_rnn/): {root / name} is missing")
    return root


def openai_layout(model: nn.Module) -> nn.Module:
    """A deep copy of an open_clip CLIP that the official wrappers can drive: sequence-first attention and per-block
    causal masks on the text tower (OpenAI's CLIP module layout)."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention):
            module.batch_first = False
    for block in model.transformer.resblocks:
        block.attn_mask = model.attn_mask
    for block in model.visual.transformer.resblocks:
        block.attn_mask = None
    return model


def openai_transform(n_px: int):
    """OpenAI CLIP's eval transform for PIL images."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize(n_px, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(n_px),
            lambda image: image.convert("RGB"),
            T.ToTensor(),
            T.Normalize(OPENAI_DATASET_MEAN, OPENAI_DATASET_STD),
        ]
    )


def install_stand_ins(models: dict[str, object]) -> None:
    """Put the `clip` and `utils.visualize` stand-ins into sys.modules; `models`: clip.load name -> LoadedModel."""
    import open_clip

    def load(name: str, device: str = "cpu"):
        loaded = models[name]
        return openai_layout(loaded.model).to(device), openai_transform(loaded.image_size)

    sys.modules["clip"] = types.ModuleType("clip")
    sys.modules["clip"].load = load
    sys.modules["clip"].tokenize = open_clip.tokenize
    utils = types.ModuleType("utils")
    utils.__path__ = []
    visualize = types.ModuleType("utils.visualize")
    visualize.viz_attn = lambda *args, **kwargs: None
    utils.visualize = visualize
    sys.modules["utils"], sys.modules["utils.visualize"] = utils, visualize


def import_official(root: Path) -> dict[str, types.ModuleType]:
    """Load modeling/model/*.py of the checkout as modules `modeling.model.NAME` (stand-ins must be installed)."""
    root = check_checkout(root)
    for name, path in (("modeling", root / "modeling"), ("modeling.model", root / "modeling" / "model")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    for name in MODULES:
        sys.modules.pop(f"modeling.model.{name}", None)
    return {name: importlib.import_module(f"modeling.model.{name}") for name in MODULES}


def voc_config(root: Path) -> SimpleNamespace:
    """The official configs/voc.yaml as nested namespaces."""
    import yaml

    raw = yaml.safe_load((check_checkout(root) / "configs" / "voc.yaml").read_text())
    return SimpleNamespace(**{k: SimpleNamespace(**v) if isinstance(v, dict) else v for k, v in raw.items()})


@dataclass
class OfficialStage:
    """What one official `_forward_stage` saw and made."""

    cam_text: list[str]
    texts: np.ndarray | None = None  # (Q, d) CAM text features
    cams: list[np.ndarray] = field(default_factory=list)  # (gh, gw) normalised gradCAM per query
    boxes: list[np.ndarray] = field(default_factory=list)  # (gh, gw) bool per query (the aff_mask)
    proposals: np.ndarray | None = None  # (Q, H, W)
    masks: list[np.ndarray] = field(default_factory=list)  # (H, W) bool per query
    prompted: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 per query
    scores: np.ndarray | None = None  # (Q, Q)
    kept: list[str] = field(default_factory=list)


@dataclass
class OfficialRun:
    """The official run on one image."""

    tokens: np.ndarray  # (1 + N, width), input of the last block
    stages: list[OfficialStage]
    final_cams: np.ndarray  # (K, H, W), what PostProcess got
    final_concepts: list[str]
    labels_postprocess: np.ndarray  # (H, W) from the official output masks (0 = background)
    model: object  # the CaR module, for further official calls (its postprocessor, apply_visual_prompts)


def build_official(root: Path, cfg: SimpleNamespace):
    """The official CaR module (semantic mode, on the CPU) built from `cfg` with the stand-ins in place."""
    modules = import_official(root)
    return modules, modules["car"].CaR(cfg, device="cpu", seg_mode="semantic")


def run_official(modules: dict, car, image: np.ndarray, concepts: list[str]) -> OfficialRun:
    """Run the official CaR on an (H, W, 3) uint8 image and record every stage."""
    from PIL import Image

    clipcam = modules["clipcam"]
    stages: list[OfficialStage] = []
    record: dict = {}
    originals = {name: getattr(clipcam, name) for name in ("scoremap2bbox", "zeroshot_classifier")}

    def scoremap2bbox(scoremap, threshold, multi_contour_eval=False):
        box, cnt = originals["scoremap2bbox"](scoremap, threshold, multi_contour_eval)
        aff = np.zeros(scoremap.shape, bool)
        for x0, y0, x1, y1 in box[:cnt]:
            aff[y0:y1, x0:x1] = True
        stages[-1].cams.append(np.array(scoremap, np.float64))
        stages[-1].boxes.append(aff)
        return box, cnt

    def zeroshot_classifier(classnames, templates, model, device):
        out = originals["zeroshot_classifier"](classnames, templates, model, device)
        if stages and templates is None:  # the CAM's foreground texts (the background ones have a template)
            stages[-1].texts = out.detach().double().numpy()
        return out

    encode_image = car.mask_generator.clip_model.encode_image

    def encode_image_recorded(image, h, w):
        features, weights = encode_image(image, h, w)
        record["tokens"] = features[:, 0].detach().double().numpy()  # (L, width) of the LND tensor
        return features, weights

    apply_prompts, confidence, forward_stage, post_process = (
        car.apply_visual_prompts,
        car.get_mask_confidence,
        car._forward_stage,
        car.post_process,
    )

    def apply_prompts_recorded(img, mask):
        out = apply_prompts(img, mask)
        stages[-1].masks.append(mask.detach().numpy() > car.mask_threshold)
        stages[-1].prompted.append(np.array(out, np.uint8))
        return out

    def confidence_recorded(prompted, text):
        scores = confidence(prompted, text)
        stages[-1].scores = scores.detach().double().numpy()
        return scores

    def forward_stage_recorded(ori_img, cam_text, clip_text, semantic_prompt_text):
        stages.append(OfficialStage(list(cam_text)))
        texts, all_scores, proposals, semantic = forward_stage(ori_img, cam_text, clip_text, semantic_prompt_text)
        stages[-1].proposals = proposals.detach().double().numpy()
        stages[-1].kept = list(texts)
        return texts, all_scores, proposals, semantic

    def post_process_recorded(ori_img, cams, separate=False, bg_factor=1.0):
        record["final"] = cams.detach().double().numpy()
        return post_process(ori_img, cams, separate=separate, bg_factor=bg_factor)

    car.apply_visual_prompts, car.get_mask_confidence = apply_prompts_recorded, confidence_recorded
    car._forward_stage, car.post_process = forward_stage_recorded, post_process_recorded
    car.mask_generator.clip_model.encode_image = encode_image_recorded
    clipcam.scoremap2bbox, clipcam.zeroshot_classifier = scoremap2bbox, zeroshot_classifier
    try:
        masks, scores = car(Image.fromarray(image), list(concepts))
    finally:
        clipcam.scoremap2bbox, clipcam.zeroshot_classifier = (
            originals["scoremap2bbox"],
            originals["zeroshot_classifier"],
        )
        for name in ("apply_visual_prompts", "get_mask_confidence", "_forward_stage"):
            delattr(car, name)  # the instance attributes go; the class's methods show again
        car.post_process = post_process
        del car.mask_generator.clip_model.encode_image
    template = car.cam_text_template
    names = {template.format(c): c for c in concepts}
    for stage in stages:
        stage.cam_text = [names.get(t, t) for t in stage.cam_text]
        stage.kept = [names.get(t, t) for t in stage.kept]
    labels = np.zeros(image.shape[:2], np.uint8)
    order = np.argsort(scores.numpy(), kind="stable")  # the official assign_label: higher scores paint last
    for c in order:
        if float(scores[c]) > 0:
            labels[masks[c].numpy() > 0.5] = c + 1
    final_concepts = stages[-1].cam_text
    return OfficialRun(record["tokens"], stages, record["final"], final_concepts, labels, car)
