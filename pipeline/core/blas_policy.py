"""OpenBLAS's kernel for faiss: named from the CPU's flags where faiss's bundled OpenBLAS would not recognise the CPU.

faiss-cpu's wheels bundle their own OpenBLAS (0.3.15 in faiss-cpu 1.15), which picks its matrix kernels from the
CPU model. On a CPU it does not know (a newer Xeon, or a VM that hides the model) it falls back to its generic SSE3
kernel, 'Prescott'. On the development machine (a 2-core Xeon, family 6 model 207, AVX-512) that made
nearest-centroid assignment, the core of both k-means and adding vectors to an IVF index, 5x slower than the
AVX-512 kernel (50,000 x 512 against 8,192 centroids: 11.3 s against 2.2 s, identical assignments).
OPENBLAS_CORETYPE names the kernel. OpenBLAS reads it once, when it loads, so it is set before faiss is imported:
SkylakeX for AVX-512 (F, CD, BW, DQ, VL) and Haswell for AVX2 with FMA, the single-precision kernels OpenBLAS itself
uses on the CPUs it recognises with those flags. A value the user set is kept.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.env_before_load import set_before_load

VARIABLE = "OPENBLAS_CORETYPE"
AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}
AVX2 = {"avx2", "fma"}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags from Linux's /proc/cpuinfo; empty where there is none (macOS, Windows)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def openblas_core(flags: set[str]) -> str | None:
    """The OpenBLAS kernel for a CPU with these flags, or None to leave OpenBLAS's own detection alone."""
    if AVX512 <= flags:
        return "SkylakeX"
    if AVX2 <= flags:
        return "Haswell"
    return None


def name_blas_kernel() -> bool:
    """Set OPENBLAS_CORETYPE for this process and its children from the CPU's flags, unless the user chose one;
    return whether this process's faiss follows it (False when a kernel was chosen, none fits, or faiss is loaded)."""
    core = openblas_core(cpu_flags())
    return set_before_load(VARIABLE, core, "faiss", "faiss's OpenBLAS uses the CPU's vector kernels")
