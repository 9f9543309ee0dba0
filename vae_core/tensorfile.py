"""Safetensors files read and checked without torch: each file's header (its size, its JSON,
every tensor's dtype, shape and bytes, inside the file and not overlapping) before any tensor is
read, then tensors read one at a time into numpy arrays. Nothing is ever unpickled.

`checkpoints` reads a run's weights through this into torch; pages that must draw before torch
is imported (it takes 1.5-2 s on a cold server) read them as they are.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from . import store
from .store import CheckpointError, open_in_run, parse_json

MAX_TENSORS = 100_000
# The bytes per element of every safetensors dtype, and the dtypes a checkpoint may hold:
# float32 weights and optimizer state, uint8 RNG states, an int64 permutation.
ITEM_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
              "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
DTYPES = {"F32": np.float32, "U8": np.uint8, "I64": np.int64}


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    begin: int                     # byte offsets in the data that follows the header
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass
class TensorFile:
    """An open safetensors file whose header has been checked; tensors are read on demand."""
    path: Path
    run: Path
    file: BinaryIO
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_start: int

    def fail(self, problem: str) -> CheckpointError:
        return CheckpointError(self.path, problem, self.run)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())

    def read(self, name: str) -> np.ndarray:
        """One tensor, read straight into its own memory (one copy, no mapping of the file)."""
        info = self.tensors[name]
        if info.dtype not in DTYPES:
            raise self.fail(f"tensor {name} is {info.dtype}; a checkpoint holds only "
                            f"{', '.join(DTYPES)} tensors")
        array = np.empty(info.shape, dtype=DTYPES[info.dtype])
        if info.nbytes:
            buffer = memoryview(array.reshape(-1).view(np.uint8))
            self.file.seek(self.data_start + info.begin)
            done = 0
            while done < info.nbytes:
                count = self.file.readinto(buffer[done:])
                if not count:
                    raise self.fail("ends early: the file is truncated")
                done += count
        return array

    def read_all(self) -> dict[str, np.ndarray]:
        return {name: self.read(name) for name in self.tensors}

    def close(self) -> None:
        self.file.close()


def _check_entry(name: Any, entry: Any, data_size: int, fail: Callable[[str], CheckpointError]) -> TensorInfo:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise fail(f"header entry {name!r} is not a tensor description")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in ITEM_SIZES:
        raise fail(f"tensor {name} has an unknown dtype {json.dumps(dtype)[:20]}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise fail(f"tensor {name} has a bad shape {json.dumps(shape)[:40]}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(
            isinstance(n, int) and not isinstance(n, bool) for n in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_size):
        raise fail(f"tensor {name} lies outside the file (offsets {json.dumps(offsets)[:40]}); the file "
                   "is corrupt or truncated")
    if offsets[1] - offsets[0] != math.prod(shape) * ITEM_SIZES[dtype]:
        raise fail(f"tensor {name}: shape {tuple(shape)} of {dtype} does not fill its "
                   f"{offsets[1] - offsets[0]} bytes")
    return TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])


def open_tensors(run_dir: Path, folder: Path, filename: str) -> TensorFile:
    """Open a safetensors file of a state folder and check its header: its size, its JSON, and
    each tensor's dtype, shape and bytes (inside the file, not overlapping)."""
    path = folder / filename
    file = open_in_run(run_dir, folder.name, filename)
    try:
        def fail(problem: str) -> CheckpointError:
            return CheckpointError(path, problem, run_dir)
        size = os.fstat(file.fileno()).st_size
        head = file.read(8)
        if len(head) < 8:
            raise fail("not a readable safetensors file (too short); it is corrupt or truncated")
        length = int.from_bytes(head, "little")
        if length > min(size - 8, store.MAX_JSON_BYTES):
            raise fail(f"not a readable safetensors file (its header claims {length} bytes); it is "
                       "corrupt or truncated")
        header = parse_json(file.read(length), path, run_dir)
        if not isinstance(header, dict):
            raise fail("not a readable safetensors file (its header is not a JSON object); it is corrupt")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise fail("safetensors metadata must map names to texts")
        if len(header) > MAX_TENSORS:
            raise fail(f"{len(header)} tensors, more than {MAX_TENSORS}")
        data_size = size - 8 - length
        tensors = {name: _check_entry(name, entry, data_size, fail) for name, entry in header.items()}
        previous_end = 0
        for info in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
            if info.begin < previous_end:
                raise fail("two tensors share bytes; the file is corrupt")
            previous_end = info.end
        return TensorFile(path, run_dir, file, tensors, metadata, 8 + length)
    except BaseException:
        file.close()
        raise


def check_against(tensors: TensorFile, expected: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """Every weight the model needs (name: shape and safetensors dtype), and nothing else."""
    missing = sorted(set(expected) - set(tensors.tensors))
    unexpected = sorted(set(tensors.tensors) - set(expected))
    if missing or unexpected:
        raise tensors.fail("weights do not match the config: "
                           + (f"missing {', '.join(missing[:5])}" if missing else "")
                           + ("; " if missing and unexpected else "")
                           + (f"unexpected {', '.join(unexpected[:5])}" if unexpected else ""))
    for name, (shape, dtype) in expected.items():
        info = tensors.tensors[name]
        if info.shape != shape:
            raise tensors.fail(f"weight {name} has shape {info.shape} but the config needs {shape}")
        if info.dtype != dtype:
            raise tensors.fail(f"weight {name} is {info.dtype} but the model needs {dtype}")


def read_finite(tensors: TensorFile) -> dict[str, np.ndarray]:
    """Every tensor of the file; a floating-point one with a NaN or an infinity is refused."""
    values = tensors.read_all()
    for name, value in values.items():
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise tensors.fail(f"weight {name} contains NaN or infinite values")
    return values
