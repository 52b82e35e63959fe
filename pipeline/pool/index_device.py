"""Where the index build's heavy arithmetic runs: faiss on the CPU, faiss-gpu, or torch (CUDA, or CPU in tests).

k-means (training the coarse quantizer) and list assignment (adding vectors) are the two costs that grow with
count x nlist. `--device auto` uses faiss-gpu when faiss sees a GPU, else torch when torch sees CUDA (GPU machines
often have a CUDA torch but no faiss-gpu built for their CUDA), else the CPU; faiss-cpu always holds the index.
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Backend:
    """Who runs k-means and list assignment: 'faiss-cpu', 'faiss-gpu', or 'torch' on `torch_device`."""

    kind: str = "faiss-cpu"
    torch_device: str = "cpu"

    def __post_init__(self) -> None:
        if self.kind not in ("faiss-cpu", "faiss-gpu", "torch"):
            raise ValueError(f"unknown index backend {self.kind!r}: faiss-cpu, faiss-gpu or torch")

    def __str__(self) -> str:
        return f"torch:{self.torch_device}" if self.kind == "torch" else self.kind


CPU = Backend()


def faiss_gpus() -> int:
    """GPUs faiss can use (0 with faiss-cpu, whose get_num_gpus always answers 0)."""
    import faiss

    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


def torch_cuda() -> bool:
    """Whether torch sees a CUDA device (torch is imported only here, never by a CPU build)."""
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str) -> Backend:
    """The backend for `--device auto|cpu|cuda`; 'cuda' without any GPU is a clear error."""
    if device not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return CPU
    if faiss_gpus() > 0:
        return Backend("faiss-gpu")
    if torch_cuda():
        return Backend("torch", "cuda")
    if device == "cuda":
        raise ValueError("--device cuda: neither faiss-gpu nor torch sees a CUDA device (use --device auto or cpu)")
    return CPU


def parse_backend(text: str) -> Backend:
    """A Backend from its str() form ('faiss-cpu', 'faiss-gpu', 'torch:cuda', 'torch:cpu'), as stages carry it."""
    kind, _, device = text.partition(":")
    return Backend(kind, device or "cpu")
