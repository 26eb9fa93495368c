"""ctypes declarations of the native core, from the signatures generated out of the C API
description (``_api.py``): one native library, two faces (C and Python)."""

from __future__ import annotations

import ctypes
import importlib.machinery
import pathlib
from typing import Any

from ._api import SIGNATURES

_TYPES: dict[str, Any] = {
    "void": None,
    "int": ctypes.c_int,
    "bool": ctypes.c_bool,
    "size_t": ctypes.c_size_t,
    "int64_t": ctypes.c_int64,
    "double": ctypes.c_double,
    "unsigned long long": ctypes.c_ulonglong,
    "const char *": ctypes.c_char_p,
    "char **": ctypes.POINTER(ctypes.c_void_p),
    "const char **": ctypes.POINTER(ctypes.c_void_p),
    "const char *const *": ctypes.POINTER(ctypes.c_char_p),
    "size_t *": ctypes.POINTER(ctypes.c_size_t),
    "bool *": ctypes.POINTER(ctypes.c_bool),
    "int64_t *": ctypes.POINTER(ctypes.c_int64),
    "double *": ctypes.POINTER(ctypes.c_double),
    "const int64_t **": ctypes.POINTER(ctypes.c_void_p),
    "const double **": ctypes.POINTER(ctypes.c_void_p),
    "const int64_t *": ctypes.POINTER(ctypes.c_int64),
    "const double *": ctypes.POINTER(ctypes.c_double),
}


def _ctype(c_type: str) -> Any:
    if c_type in _TYPES:
        return _TYPES[c_type]
    if c_type.startswith("enum "):
        return ctypes.c_int
    if c_type.endswith("*"):
        return ctypes.c_void_p  # opaque handles, Arrow structs, byte buffers
    raise TypeError(f"no ctypes mapping for C type {c_type!r}")


def _find_library() -> pathlib.Path:
    here = pathlib.Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_native{suffix}"
        if candidate.exists():
            return candidate
    raise ImportError(f"dora-ts: the native core (_native*.so) is missing from {here}; reinstall the package (pip install ./bindings/python)")


lib = ctypes.CDLL(str(_find_library()))
for _name, (_returns, _params) in SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _ctype(_returns)
    _fn.argtypes = [_ctype(p) for p in _params]

# Internal entry points of the core used by the golden-vector tests (not part of the API).
lib.dora__decode_frames.restype = ctypes.c_int
lib.dora__decode_frames.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
                                    ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_bool)]

# Sizes of the Arrow C Data Interface structs (the standard ABI).
ARROW_ARRAY_SIZE = 80
ARROW_SCHEMA_SIZE = 72


def last_error() -> str:
    message = lib.dora_last_error()
    return message.decode("utf-8", "replace") if message else "unknown error"
