"""The toy CLIP's dense fine-tune: the tag loss rewards localised concepts; only the last visual block moves."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.core.models import load_model
from pipeline.toy.dense_finetune import DenseFinetuneConfig, finetune_dense, tag_loss


def test_tag_loss_rewards_patches_that_match_the_tags() -> None:
    classes = F.normalize(torch.randn(5, 16), dim=-1)  # (C, d)
    tags = torch.zeros(2, 5)
    tags[0, [0, 3]] = 1
    tags[1, [1]] = 1
    right = classes[[0, 0, 3, 3, 0, 3], :].expand(2, -1, -1).clone()  # (B, N, d)
    right[1] = classes[[1] * 6]
    wrong = classes[[2] * 6].expand(2, -1, -1)
    assert tag_loss(right, classes, tags, topk=2) < 0.3 < tag_loss(wrong, classes, tags, topk=2)


def test_finetune_moves_only_the_last_visual_block(tmp_path) -> None:
    out = tmp_path / "dense.safetensors"
    torch.set_num_threads(1)
    finetune_dense(DenseFinetuneConfig(steps=3, batch_size=16, train_images=64, warmup=1), out, progress=False)
    assert torch.get_num_threads() == 1  # the process's thread count is given back
    before = load_model("toy", device="cpu").model.state_dict()
    after = load_model(f"toy:{out}", device="cpu").model.state_dict()
    last = f"visual.transformer.resblocks.{len(load_model('toy').model.visual.transformer.resblocks) - 1}."
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith((last, "visual.ln_post", "visual.proj")) for k in moved)
    assert (out.with_suffix(".json")).exists()
