"""Import ReCo's official reference-embedding pickle ({category: 1-D tensor}) as a SegmentBank, without running code."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segment.bank import SegmentBank


def _storage_from_bytes(data: bytes) -> Any:
    """A tensor storage pickled by torch, re-read with torch's weights-only loader (never arbitrary code)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only globals a reference-embedding pickle may name: tensor, ordered-dict and numpy-array rebuilders."""
    import collections

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allowed tensor/array globals and refuses everything else."""

    def find_class(self, module: str, name: str) -> Any:
        """Resolve `module.name` if it is allowed; raise pickle.UnpicklingError otherwise."""
        found = _allowed_globals().get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a reference-embedding pickle holds only tensors"
            )
        return found


def _as_vector(name: str, value: Any) -> torch.Tensor:
    """A (d,) float32 tensor from a tensor or array value; ValueError for anything else."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"category {name!r}: expected a tensor, got {type(value).__name__}")
    value = value.detach().float().cpu().squeeze()
    if value.ndim != 1:
        raise ValueError(f"category {name!r}: expected a 1-D embedding, got shape {tuple(value.shape)}")
    return value


def read_reco_pickle(path: Path | str) -> dict[str, Any]:
    """The raw {category: tensor} dict of a ReCo file (plain pickle or torch.save zip), read without running code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ReCo reference file not found: {path}")
    if zipfile.is_zipfile(path):
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise ValueError(f"{path}: refused by torch's weights-only loader: {error}") from None
    else:
        with path.open("rb") as f:
            try:
                data = RestrictedUnpickler(f).load()
            except pickle.UnpicklingError as error:
                raise ValueError(f"{path}: {error}") from None
            except (EOFError, ValueError, TypeError) as error:
                raise ValueError(f"{path}: not a readable pickle ({error})") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a non-empty dict of category -> embedding, got {type(data).__name__}")
    return data


def import_reco_pickle(path: Path | str, encoder: str = "reco-official") -> SegmentBank:
    """A SegmentBank from ReCo's official {category name: 1-D reference tensor} pickle, re-normalised."""
    data = read_reco_pickle(path)
    names = [str(k) for k in data]
    vectors = [_as_vector(n, v) for n, v in zip(names, data.values(), strict=True)]
    dims = {int(v.shape[0]) for v in vectors}
    if len(dims) != 1:
        raise ValueError(f"{path}: categories have different dims {sorted(dims)}")
    return SegmentBank(
        names,
        torch.stack(vectors),
        None,
        encoder=encoder,
        method="reco-official-import",
        params={},
        provenance={"imported_from": str(Path(path).resolve())},
    )
