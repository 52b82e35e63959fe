"""ZegCLIP parity: coarchive against the official code (ZiqinZhou66/ZegCLIP) on the same seeded weights and images.

    python -m bench.parity.zegclip --official /tmp/official/zegclip [--write-fixture PATH]

Builds the official segmentor from a scratch checkout (mmcv / mmseg stood in, see _zegclip_official.STOOD_IN) at
the tiny size of _zegclip_inputs.TINY, fills it with seeded weights, writes its checkpoint as mmcv does
({'meta', 'state_dict'}), and compares, stage by stage, with coarchive's ZegCLIP built from that state dict:
text embeddings, the tokens entering every block (deep prompts), patch and global features, the relationship
descriptor's queries, each decoder layer's logits, window scores and slide-inference label maps, all in float64;
then the official checkpoint file imported by `coarchive zegclip import-official` and run by the `zegclip`
segmenter as a user would (float32) against the official float32 run. Prints a markdown table.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from bench.parity import _zegclip_inputs as inputs
from bench.parity._cli import parity_parser, refuse, write_fixture

DEFAULT_OFFICIAL = Path("/tmp/official/zegclip")
OFFICIAL_TEMPLATE = "a photo of a {}"  # the official code's and its VOC embedding notebook's single template
SUB = 3  # score maps are stored at every 3rd pixel (coprime to the patch size: all interpolation phases)


class Recorder:
    """Forward hooks that keep named outputs (or inputs) of modules for one call at a time."""

    def __init__(self) -> None:
        self.values: dict[str, list[torch.Tensor]] = {}
        self.handles: list = []

    def output(self, name: str, module: torch.nn.Module, pick) -> None:
        """Keep pick(output) of `module` under `name` at every call."""
        self.handles.append(module.register_forward_hook(lambda _m, _a, out: self._add(name, pick(out))))

    def input(self, name: str, module: torch.nn.Module, pick) -> None:
        """Keep pick(first positional input) of `module` under `name` at every call."""
        self.handles.append(module.register_forward_pre_hook(lambda _m, args: self._add(name, pick(args[0]))))

    def _add(self, name: str, value: torch.Tensor) -> None:
        self.values.setdefault(name, []).append(value.detach().clone())

    def take(self) -> dict[str, list[torch.Tensor]]:
        """What was recorded since the last take."""
        values, self.values = self.values, {}
        return values


def build_official(official: SimpleNamespace, state: dict[str, torch.Tensor] | None, dtype: torch.dtype):
    """The official ZegCLIP segmentor (VOC zero-shot config at the tiny size) in eval mode, filled with `state`."""
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its visibility masks
        model = official.zegclip.ZegCLIP(**inputs.official_config()).to(dtype)
    if state is not None:
        model.load_state_dict(state)  # after the cast: float64 values stay float64
    return model.eval()


def official_hooks(model) -> Recorder:
    """Record the official model's block inputs (deep prompts in place), features, RD queries, decoder logits."""
    rec = Recorder()
    for i, block in enumerate(model.backbone.transformer.resblocks):
        rec.input(f"block{i}", block, lambda x: x.permute(1, 0, 2))  # (L, B, W) -> (B, L, W)
    rec.output("patches", model.backbone, lambda out: out[0][0])  # (B, d, gh, gw), unit
    rec.output("global", model.backbone, lambda out: out[1])  # (B, d), unit
    rec.output("queries", model.decode_head.q_proj, lambda out: out)  # (B, C, d)
    for j, layer in enumerate(model.decode_head.decoder_1.layers):
        rec.output(f"logits{j}", layer.multihead_attn, lambda out: out[1])  # (B, C, N), head average
    return rec


def ours_hooks(model) -> Recorder:
    """The same records on coarchive's ZegCLIP."""
    rec = Recorder()
    batch_first = getattr(model.encoder.visual.transformer, "batch_first", True)
    for i, block in enumerate(model.encoder.visual.transformer.resblocks):
        rec.input(f"block{i}", block, lambda x: x if batch_first else x.transpose(0, 1))
    rec.output("patches", model.encoder, lambda out: out[0])
    rec.output("global", model.encoder, lambda out: out[1])
    rec.output("queries", model.head.q_proj, lambda out: out)
    for j, layer in enumerate(model.head.decoder.layers):
        rec.output(f"logits{j}", layer.multihead_attn, lambda out: out[1])
    return rec


def official_text(model, dtype: torch.dtype) -> tuple[np.ndarray, torch.Tensor]:
    """The official tokens of 'a photo of a {c}' and its unit text embeddings (C, d) from its text encoder."""
    with torch.no_grad():
        text = model.text_embedding(model.texts, torch.zeros((), dtype=dtype))
    return model.texts.numpy(), text


def run_official(checkout: Path, work: Path, write_checkpoint: Path | None = None) -> dict[str, np.ndarray]:
    """Every official output the parity table and the fixture need (float64, and the float32 end-to-end run)."""
    from bench.parity._zegclip_official import lift_fp32_layernorm, load_official

    official = load_official(checkout)
    images = inputs.seeded_images()
    shapes_model = build_official(official, None, torch.float32)
    shapes = {k: tuple(v.shape) for k, v in shapes_model.state_dict().items()}
    state = inputs.seeded_state(shapes)
    out: dict[str, np.ndarray] = {
        "keys": np.array(list(shapes)),
        "shapes": np.array([",".join(map(str, s)) for s in shapes.values()]),
        "inputs_sha256": np.array(inputs.checksum(state, images)),
    }

    # float32, the official code untouched: the end-to-end reference for an imported official checkpoint
    model32 = build_official(official, {k: v.float() for k, v in state.items()}, torch.float32)
    if write_checkpoint is not None:  # what mmcv's save_checkpoint writes: meta and a float32 state dict
        torch.save({"meta": {"note": "official ZegCLIP, seeded"}, "state_dict": model32.state_dict()}, write_checkpoint)
    with torch.no_grad():
        for n, image in enumerate(images):
            scores = model32.slide_inference(inputs.mmseg_pixels(image, torch.float32), None, False)
            out[f"e2e_scores{n}"] = scores[0, :, ::SUB, ::SUB].numpy()
            out[f"e2e_labels{n}"] = model32.simple_test(inputs.mmseg_pixels(image, torch.float32), None)[0].numpy()

    # float64 (the official LayerNorm's float32 cast lifted: it makes float64 fail and is a no-op in float32)
    lift_fp32_layernorm(official)
    model = build_official(official, state, torch.float64)
    tokens, text = official_text(model, torch.float64)
    out["tokens"], out["text"] = tokens, text.numpy()
    text32 = text.float().double().numpy()  # the classes' embeddings as a float32 file, as the VOC configs load them
    np.save(work / "text_embedding.npy", text32)
    model.load_text_embedding = str(work / "text_embedding.npy")
    out["text32"] = text32
    rec = official_hooks(model)
    with torch.no_grad():
        scores = model.encode_decode(inputs.mmseg_pixels(images[0]), None)  # one 64 x 64 window
        for name, values in rec.take().items():
            out[name] = values[0].numpy()
        out["window_scores"] = scores[0, :, ::SUB, ::SUB].numpy()
        for n, image in enumerate(images):
            scores = model.slide_inference(inputs.mmseg_pixels(image), None, False)
            out[f"slide_scores{n}"] = scores[0, :, ::SUB, ::SUB].numpy()
            out[f"slide_labels{n}"] = model.simple_test(inputs.mmseg_pixels(image), None)[0].numpy()
        small = inputs.mmseg_pixels(inputs.seeded_images(inputs.SEED + 1, (inputs.SMALL_SHAPE,))[0])
        out["small_scores"] = model.slide_inference(small, None, False)[0].numpy()
        out["small_labels"] = model.simple_test(small, None)[0].numpy()
    return out


def run_ours(ref: dict[str, np.ndarray], work: Path, checkpoint: Path | None) -> dict[str, np.ndarray]:
    """coarchive's outputs for the same stages, from the state dict regenerated out of the fixture's key list
    (float64), and from the official checkpoint file imported as a user does (float32), when given."""
    import open_clip

    from segment.zegclip.official import import_official, load_official
    from segment.zegclip.segmenter import ZegCLIPSegmenter
    from segment.zegclip.vocabulary import Vocabulary

    inputs.register_tiny_arch(work / "configs")
    shapes = {k: tuple(int(d) for d in s.split(",")) for k, s in zip(ref["keys"], ref["shapes"], strict=True)}
    state = inputs.seeded_state(shapes)
    images = inputs.seeded_images()
    out: dict[str, np.ndarray] = {"inputs_sha256": np.array(inputs.checksum(state, images))}

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        clip = open_clip.create_model(inputs.ARCH_QUICK, pretrained=None)
        model = load_official(state, clip).eval()
    finally:
        torch.set_default_dtype(previous)
    tokenizer = open_clip.get_tokenizer(inputs.ARCH_QUICK)
    tokens = tokenizer([OFFICIAL_TEMPLATE.format(c) for c in inputs.CLASSES])
    out["tokens"] = tokens.numpy()
    with torch.no_grad():
        out["text"] = F.normalize(clip.encode_text(tokens), dim=-1).numpy()
    vocab = Vocabulary(list(inputs.CLASSES), torch.from_numpy(ref["text32"]))
    norm = (tuple(m / 255 for m in inputs.MMSEG_MEAN), tuple(s / 255 for s in inputs.MMSEG_STD))
    t = inputs.TINY
    seg = ZegCLIPSegmenter(
        model=model,
        vocabulary=vocab,
        biased=inputs.SEEN,
        seen_bias=0.1,
        crop_size=t["image_size"],
        stride=t["stride"],
        device="cpu",
        normalisation=norm,
    )
    text = torch.from_numpy(ref["text32"])
    bias = torch.tensor([0.1 if c in inputs.SEEN else 0.0 for c in inputs.CLASSES], dtype=torch.float64)
    rec = ours_hooks(model)
    scores = seg.window_scores(images[0][None], text, bias)
    for name, values in rec.take().items():
        out[name] = values[0].numpy()
    out["window_scores"] = scores[0, :, ::SUB, ::SUB].numpy()
    for n, seg_out in enumerate(seg.predict_batch(images, list(inputs.CLASSES))):
        out[f"slide_scores{n}"] = seg_out.scores[:, ::SUB, ::SUB].numpy()
        out[f"slide_labels{n}"] = np.asarray(seg_out.labels)
    small = seg.predict(inputs.seeded_images(inputs.SEED + 1, (inputs.SMALL_SHAPE,))[0], list(inputs.CLASSES))
    out["small_scores"], out["small_labels"] = small.scores.numpy(), np.asarray(small.labels)

    if checkpoint is not None:  # as a user: import-official with the default-style architecture, then the segmenter
        folder = import_official(checkpoint, work / "imported", list(inputs.CLASSES), list(inputs.SEEN), inputs.ARCH)
        user = ZegCLIPSegmenter(checkpoint=folder, device="cpu")
        for n, seg_out in enumerate(user.predict_batch(images, list(inputs.CLASSES))):
            out[f"e2e_scores{n}"] = seg_out.scores[:, ::SUB, ::SUB].numpy()
            out[f"e2e_labels{n}"] = np.asarray(seg_out.labels)
    return out


STAGES = (  # (stage, what, keys)
    ("inputs", "sha256 of the seeded weights and images", "inputs_sha256"),
    ("text", "tokens of 'a photo of a {c}'", "tokens"),
    ("text", "text embeddings (C, d)", "text"),
    ("deep prompts", "tokens entering block 0 (CLS, prompts, patches)", "block0"),
    ("deep prompts", "tokens entering blocks 1-2 (prompts replaced)", "block1,block2"),
    ("features", "patch embeddings (d, 8, 8), unit", "patches"),
    ("features", "global embedding g, unit", "global"),
    ("relationship descriptor", "class queries Linear([t*g; t])", "queries"),
    ("decoder", "layers 1-2 attention logits", "logits0,logits1"),
    ("decoder", "last layer logits (the masks)", "logits2"),
    ("window", "sigmoid - 0.1 on seen, one 64 px window", "window_scores"),
    ("slide", "scores, 3 images (1, 2, 2 windows)", "slide_scores0,slide_scores1,slide_scores2"),
    ("slide", "label maps", "slide_labels0,slide_labels1,slide_labels2"),
    ("small window (deliberate)", "scores, 48 px image < 64 px crop", "small_scores"),
    ("small window (deliberate)", "label map", "small_labels"),
    ("imported checkpoint", "scores (float32: official file, import-official, segmenter)",
     "e2e_scores0,e2e_scores1,e2e_scores2"),
    ("imported checkpoint", "label maps (float32)", "e2e_labels0,e2e_labels1,e2e_labels2"),
)  # fmt: skip


def compare(ref: dict[str, np.ndarray], ours: dict[str, np.ndarray]) -> list[dict[str, str]]:
    """One row per stage: max absolute difference, and the share of identical entries (pixels for label maps)."""
    rows = []
    for stage, what, keys in STAGES:
        keys = keys.split(",")
        if any(k not in ours for k in keys):
            continue
        pairs = [(np.asarray(ref[k]), np.asarray(ours[k])) for k in keys]
        if any(a.shape != b.shape for a, b in pairs):
            shapes = [f"{a.shape} vs {b.shape}" for a, b in pairs]
            rows.append({"stage": stage, "what": what, "max abs diff": "shape " + "; ".join(shapes), "identical": "0"})
            continue
        same = sum(int((a == b).sum()) for a, b in pairs) / sum(a.size for a, _ in pairs)
        if pairs[0][0].dtype.kind in "USO":  # text: equal or not
            diff = "-"
        else:
            diff = f"{max(float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) for a, b in pairs):.1e}"
        rows.append({"stage": stage, "what": what, "max abs diff": diff, "identical": f"{same:.4f}"})
    return rows


def checkout_commit(checkout: Path) -> str:
    """The commit the official checkout is at (or 'unknown' outside git)."""
    import subprocess

    result = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def markdown(rows: list[dict[str, str]]) -> str:
    """The rows as a markdown table."""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row[h] for h in header) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the parity table of coarchive's ZegCLIP against the official code; optionally write the fixture."""
    parser = parity_parser("python -m bench.parity.zegclip", main.__doc__, DEFAULT_OFFICIAL, "ZiqinZhou66/ZegCLIP")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    args = parser.parse_args(argv)
    if not (args.official / "models" / "segmentor" / "zegclip.py").is_file():
        return refuse(f"no ZegCLIP checkout at {args.official} (git clone it, see --help)")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from bench.parity._zegclip_official import STOOD_IN

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint = work / "iter_official.pth"
        ref = run_official(args.official, work, checkpoint)
        ours = run_ours(ref, work, checkpoint)
    if args.write_fixture:
        ref["command"] = np.array(f"python -m bench.parity.zegclip --official {args.official} --write-fixture PATH")
        ref["official_commit"] = np.array(checkout_commit(args.official))
        write_fixture(args.write_fixture, ref)
    print(
        f"ZegCLIP parity, official checkout {args.official} (tiny seeded model {inputs.TINY}), float64 unless noted\n"
    )
    print(markdown(compare(ref, ours)))
    print("\nStood in for the official code's missing dependencies:")
    for what, how in STOOD_IN.items():
        print(f"- {what}: {how}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
