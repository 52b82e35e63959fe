"""The zegclip segmenter: sliding windows, seen-class bias, vocabulary, checkpoints, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.toy.quality import BENCH_SEED, render_many
from pipeline.toy.world import WorldSpec
from segment.eval_protocol import predict_with_protocol
from segment.segmenter import Protocol, create_segmenter
from segment.zegclip.data import clip_mean_std, to_pixels
from segment.zegclip.model import ModelConfig, ZegCLIP
from segment.zegclip.vocabulary import Vocabulary, embed_texts

CLASSES = list(WorldSpec().classes)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return render_many(WorldSpec(), BENCH_SEED, 2, workers=1, progress=False)[0]  # (2, 96, 96, 3)


@pytest.fixture(scope="module")
def parts(toy_model):
    torch.manual_seed(0)
    model = ZegCLIP(toy_model.model.visual, ModelConfig(num_tokens=3)).eval()
    return model, Vocabulary(CLASSES, embed_texts(toy_model, CLASSES))


def test_one_window_equals_the_network_on_the_whole_image(parts, images) -> None:
    model, vocab = parts
    seg = create_segmenter("zegclip", model=model, vocabulary=vocab, device="cpu")
    assert seg.protocol == Protocol("slide", size=96, stride=80)
    got = seg.predict(images[0], CLASSES[:4]).scores
    mean, std = clip_mean_std(model.encoder.visual)
    with torch.no_grad():
        direct = model(to_pixels(images[:1], mean, std), vocab.embeddings(CLASSES[:4]))[0].sigmoid()
    torch.testing.assert_close(got, direct)
    whole = predict_with_protocol(seg, [images[0]], CLASSES, Protocol("whole"))[0]
    slide = predict_with_protocol(seg, [images[0]], CLASSES, seg.protocol)[0]
    torch.testing.assert_close(whole.scores, slide.scores)


def test_sliding_windows_cover_large_images(parts, images) -> None:
    model, vocab = parts
    seg = create_segmenter("zegclip", model=model, vocabulary=vocab, device="cpu", crop_size=64, stride=48)
    big = np.concatenate([images[0], images[1]], 1)  # (96, 192, 3)
    result = seg.predict(big, CLASSES)
    assert result.scores.shape == (len(CLASSES), 96, 192) and torch.isfinite(result.scores).all()
    left = seg.predict(np.ascontiguousarray(big[:64, :64]), CLASSES).scores  # the first window alone
    torch.testing.assert_close(result.scores[:, :32, :32], left[:, :32, :32])  # covered by that window only


def test_seen_bias_and_vocabulary(parts, images, toy_model) -> None:
    model, vocab = parts
    plain = create_segmenter("zegclip", model=model, vocabulary=vocab, device="cpu")
    biased = create_segmenter("zegclip", model=model, vocabulary=vocab, device="cpu", biased=["grass"], seen_bias=0.1)
    a, b = plain.predict(images[0], ["grass", "sky"]).scores, biased.predict(images[0], ["grass", "sky"]).scores
    torch.testing.assert_close(b[0], a[0] - 0.1)
    torch.testing.assert_close(b[1], a[1])
    with pytest.raises(ValueError, match="unicorn"):
        plain.predict(images[0], ["grass", "unicorn"])
    extended = create_segmenter("zegclip", model=model, vocabulary=vocab, clip=toy_model, concepts=["unicorn"])
    assert extended.predict(images[0], ["grass", "unicorn"]).scores.shape[0] == 2
    with pytest.raises(ValueError, match="checkpoint"):
        create_segmenter("zegclip", model=model)
    with pytest.raises(FileNotFoundError):
        create_segmenter("zegclip", checkpoint="/nonexistent/zegclip")


def test_bank_fusion_mixes_references(parts) -> None:
    _, vocab = parts
    ref = torch.nn.functional.normalize(torch.randn(vocab.dim), dim=-1)
    fused = Vocabulary(vocab.concepts, vocab.text, {"star": ref}, fusion=0.5)
    expected = torch.nn.functional.normalize(0.5 * vocab.text[vocab.index("star")] + 0.5 * ref, dim=-1)
    torch.testing.assert_close(fused.embeddings(["star"])[0], expected)
    torch.testing.assert_close(fused.embeddings(["grass"]), vocab.embeddings(["grass"]))
    with pytest.raises(ValueError, match="text space"):
        Vocabulary(vocab.concepts, vocab.text, {"star": torch.ones(3)}, fusion=0.5)
    with pytest.raises(ValueError, match="unknown concept"):
        Vocabulary(vocab.concepts, vocab.text, {"unicorn": ref}, fusion=0.5)


def test_cli_trains_resumes_and_evaluates(toy_world, tmp_path, capsys) -> None:
    from pipeline.app.cli import main

    out = tmp_path / "zeg"
    common = ["zegclip", "train", "--dataset", "toy", "--data-root", str(toy_world / "benchmark"), "--split", "val",
              "--out", str(out), "--steps", "4", "--batch-size", "2", "--crop-size", "64", "--warmup", "1",
              "--prompts", "2", "--quiet"]  # fmt: skip
    assert main([*common, "--unseen", "star,ring", "--max-steps", "2"]) == 0
    assert main([*common, "--unseen", "star,ring", "--resume"]) == 0
    st = tmp_path / "st"
    args = [*common[:-1], "--unseen", "star,ring", "--transductive-from", str(out), "--out", str(st), "--quiet"]
    assert main(args) == 0
    assert main(["eval", "--dataset", "toy", "--data-root", str(toy_world / "benchmark"), "--segmenter", "zegclip",
                 "--checkpoint", str(st), "--out", str(tmp_path / "eval"), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main([*common, "--unseen", "unicorn"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("coarchive: error:") and "unicorn" in err and "\n" not in err
    assert main([*common[:-1], "--transductive-from", str(tmp_path / "none")]) == 2
    assert "no ZegCLIP checkpoint" in capsys.readouterr().err
    bad_root = ["zegclip", "train", "--dataset", "toy", "--data-root", str(tmp_path / "nothing"), "--out", str(out)]
    assert main(bad_root) == 2
    for argv in (["zegclip", "--help"], ["zegclip", "train", "--help"], ["zegclip", "import-official", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0


def test_cli_trains_on_a_banks_archives(tmp_path, capsys) -> None:
    """--bank with --archives: the archive images of the bank's concepts join training, labelled by ReCo."""
    from pipeline.app.cli import main
    from pipeline.toy.serve_root import RUN, build_toy_root
    from segment.zegclip.checkpoint import read_meta

    root = build_toy_root(tmp_path / "root", pool_size=200, bench_size=4, bank_k=4)
    out, archives = tmp_path / "fed", root / "archives" / "toy" / RUN
    common = ["zegclip", "train", "--dataset", "toy", "--data-root", str(root / "benchmark"), "--split", "val",
              "--out", str(out), "--steps", "2", "--batch-size", "2", "--crop-size", "64", "--warmup", "1",
              "--prompts", "2", "--unseen", "star,ring", "--archives", str(archives)]  # fmt: skip
    assert main([*common, "--bank", str(root / "banks" / "toy" / RUN), "--k", "3"]) == 0
    assert "bank-fed: 6 archive images of star, ring" in capsys.readouterr().out
    assert read_meta(out).step == 2
    assert main(common) == 2
    assert "--archives needs --bank" in capsys.readouterr().err
