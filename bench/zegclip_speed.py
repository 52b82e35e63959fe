"""ZegCLIP inference speed: ViT-B/16 (random init) at 512 x 512 px, images/s beside the official 9 FPS on a 1080Ti."""

from __future__ import annotations

import argparse
import time

import torch

OFFICIAL = {"device": "GTX 1080Ti (paper)", "images_per_s": 9.0, "setting": "VOC, 512 px, ViT-B/16"}


def measure(device: str, batch: int, iterations: int, warmup: int, classes: int, size: int, amp: bool) -> float:
    """Images per second of the ZegCLIP forward pass (encoder, RD, decoder, upsampling, sigmoid) at `size` px."""
    import open_clip

    from segment.zegclip.model import ModelConfig, ZegCLIP

    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-16", pretrained=None)
    model = ZegCLIP(clip.visual, ModelConfig(num_tokens=10)).to(device).eval()
    text = torch.nn.functional.normalize(torch.randn(classes, model.dim), dim=-1).to(device)
    pixels = torch.randn(batch, 3, size, size, device=device)
    autocast = torch.autocast("cuda", dtype=torch.float16) if amp and device.startswith("cuda") else None

    def step() -> None:
        with torch.no_grad():
            if autocast is None:
                model(pixels, text).sigmoid()
            else:
                with autocast:
                    model(pixels, text).sigmoid()

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batch * iterations / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Print a markdown table: measured images/s at 512 px against the official figure."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--classes", type=int, default=20, help="class queries (VOC: 20)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--amp", action="store_true", help="float16 autocast (CUDA only)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("zegclip_speed: error: CUDA is not available; use --device cpu")
    torch.set_num_threads(args.threads)
    speed = measure(args.device, args.batch, args.iterations, args.warmup, args.classes, args.size, args.amp)
    where = (
        torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else f"CPU, {args.threads} threads"
    )
    print("| device | setting | images/s |")
    print("|---|---|---|")
    print(f"| {where} (this run) | {args.size} px, ViT-B/16 random init, batch {args.batch}, {args.classes} classes"
          f"{', fp16' if args.amp else ''} | {speed:.2f} |")  # fmt: skip
    print(f"| {OFFICIAL['device']} | {OFFICIAL['setting']} | {OFFICIAL['images_per_s']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
