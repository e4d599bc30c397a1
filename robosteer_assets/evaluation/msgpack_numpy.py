"""openpi's msgpack-numpy wire format (openpi_facts.md §6), with validation on unpack.

Messages are msgpack (msgpack >= 1.0 defaults: bin type, ``raw=False``, lists) where

* an ``np.ndarray`` is the map ``{b"__ndarray__": True, b"data": <raw C-order bytes>,
  b"dtype": dtype.str (e.g. "<f4", "|u1"), b"shape": [..]}``;
* a numpy scalar is ``{b"__npgeneric__": True, b"data": item(), b"dtype": dtype.str}``.

The marker keys are bytes. Dtype kinds ``V`` (void / structured), ``O`` (object) and ``c``
(complex) are refused when packing (``TypeError``) and when unpacking (``ValueError``).
Numpy scalars that subclass a Python type (``np.float64`` is a ``float``) are packed as that
Python type, exactly as openpi's packer does. Unpacked arrays are read-only views on the
message bytes.

``unpackb`` never trusts the peer: bytes that are not msgpack, an ndarray map with a missing
or ill-typed field, an unknown dtype, or data whose length is not ``prod(shape) * itemsize``
raise ``MessageFormatError`` (a ``ValueError``) naming the field and what was expected.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

NDARRAY_KEY = b"__ndarray__"
NPGENERIC_KEY = b"__npgeneric__"
REJECTED_KINDS = frozenset("VOc")


class MessageFormatError(ValueError):
    """Bytes that are not a valid msgpack-numpy message."""


def _pack_hook(obj: Any) -> Any:
    """msgpack ``default``: numpy arrays and scalars to their marker maps."""
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in REJECTED_KINDS:
        raise TypeError(f"msgpack-numpy: dtype {obj.dtype} (kind {obj.dtype.kind!r}) cannot be sent; "
                        f"expected a numeric, bool, bytes or unicode dtype (kinds V/O/c are refused)")
    if isinstance(obj, np.ndarray):
        return {NDARRAY_KEY: True, b"data": obj.tobytes(order="C"), b"dtype": obj.dtype.str,
                b"shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return {NPGENERIC_KEY: True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def packb(obj: Any) -> bytes:
    """Pack ``obj`` (dicts, lists, scalars, str/bytes, numpy arrays and scalars) to bytes."""
    return msgpack.packb(obj, default=_pack_hook)


def _dtype(marker: str, value: Any) -> np.dtype:
    if not isinstance(value, str):
        raise MessageFormatError(f"{marker} dtype: expected a dtype string such as '<f4', found "
                                 f"{type(value).__name__}")
    try:
        dt = np.dtype(value)
    except (TypeError, ValueError):
        raise MessageFormatError(f"{marker} dtype: unknown dtype {value!r}; expected a numpy dtype string "
                                 f"such as '<f4' or '|u1'") from None
    if dt.kind in REJECTED_KINDS:
        raise MessageFormatError(f"{marker} dtype: {value!r} (kind {dt.kind!r}) is refused; kinds V/O/c "
                                 f"cannot be received")
    if dt.itemsize == 0:
        raise MessageFormatError(f"{marker} dtype: {value!r} has item size 0")
    return dt


def _ndarray(obj: dict) -> np.ndarray:
    for key in (b"data", b"dtype", b"shape"):
        if key not in obj:
            raise MessageFormatError(f"ndarray: missing field {key.decode()!r}; expected data, dtype, shape")
    data, shape = obj[b"data"], obj[b"shape"]
    if not isinstance(data, bytes):
        raise MessageFormatError(f"ndarray data: expected bytes, found {type(data).__name__}")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise MessageFormatError(f"ndarray shape: expected a list of non-negative ints, found {shape!r}")
    dt = _dtype("ndarray", obj[b"dtype"])
    expected = math.prod(shape) * dt.itemsize
    if len(data) != expected:
        raise MessageFormatError(f"ndarray data: {len(data)} bytes do not match shape {tuple(shape)} x "
                                 f"{dt.str} ({expected} bytes expected)")
    return np.ndarray(shape=tuple(shape), dtype=dt, buffer=data)


def _npgeneric(obj: dict) -> np.generic:
    for key in (b"data", b"dtype"):
        if key not in obj:
            raise MessageFormatError(f"numpy scalar: missing field {key.decode()!r}; expected data, dtype")
    data = obj[b"data"]
    dt = _dtype("numpy scalar", obj[b"dtype"])
    if not isinstance(data, (bool, int, float, str, bytes)):
        raise MessageFormatError(f"numpy scalar data: expected a bool, int, float, str or bytes, found "
                                 f"{type(data).__name__}")
    try:
        return dt.type(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MessageFormatError(f"numpy scalar data: {data!r} is not a valid {dt.str} value ({exc})") from None


def _unpack_hook(obj: dict) -> Any:
    """msgpack ``object_hook``: marker maps back to numpy arrays and scalars."""
    if NDARRAY_KEY in obj:
        return _ndarray(obj)
    if NPGENERIC_KEY in obj:
        return _npgeneric(obj)
    return obj


def unpackb(data: bytes) -> Any:
    """Unpack a message; ``MessageFormatError`` for anything that is not valid msgpack-numpy."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MessageFormatError(f"message: expected bytes, found {type(data).__name__}")
    try:
        return msgpack.unpackb(data, object_hook=_unpack_hook)
    except MessageFormatError:
        raise
    except Exception as exc:  # msgpack raises ValueError / FormatError / StackError / UnicodeDecodeError ...
        detail = str(exc) or "malformed data"
        raise MessageFormatError(f"message: not valid msgpack ({type(exc).__name__}: {detail})") from None
