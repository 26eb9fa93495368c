"""The golden vectors (tests/vectors) through the Python binding: every Arrow vector decodes
to its described value as a pyarrow array, a pyarrow array built from the description
encodes to the vector's exact bytes, and every invalid data frame is refused."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pyarrow as pa
import pytest

from conftest import VECTORS
from dora import _native

UNITS = {"s": "s", "m": "ms", "u": "us", "n": "ns"}
SIMPLE = {"n": pa.null(), "b": pa.bool_(), "c": pa.int8(), "C": pa.uint8(), "s": pa.int16(), "S": pa.uint16(), "i": pa.int32(),
          "I": pa.uint32(), "l": pa.int64(), "L": pa.uint64(), "e": pa.float16(), "f": pa.float32(), "g": pa.float64(),
          "u": pa.string(), "U": pa.large_string(), "z": pa.binary(), "Z": pa.large_binary(), "tdD": pa.date32(), "tdm": pa.date64()}


def arrow_type(t: dict) -> pa.DataType:
    f = t["format"]
    if f in SIMPLE:
        return SIMPLE[f]
    kids = [pa.field(c.get("name", ""), arrow_type(c), c.get("nullable", True)) for c in t.get("children", [])]
    if f == "+l":
        return pa.list_(kids[0])
    if f == "+L":
        return pa.large_list(kids[0])
    if f == "+s":
        return pa.struct(kids)
    if m := re.fullmatch(r"\+w:(\d+)", f):
        return pa.list_(kids[0], int(m[1]))
    if m := re.fullmatch(r"w:(\d+)", f):
        return pa.binary(int(m[1]))
    if m := re.fullmatch(r"tt([smun])", f):
        return pa.time32(UNITS[m[1]]) if m[1] in "sm" else pa.time64(UNITS[m[1]])
    if m := re.fullmatch(r"ts([smun]):(.*)", f):
        return pa.timestamp(UNITS[m[1]], tz=m[2] or None)
    if m := re.fullmatch(r"tD([smun])", f):
        return pa.duration(UNITS[m[1]])
    raise ValueError(f"format {f}")


def storage_type(t: pa.DataType) -> pa.DataType | None:
    """The integer type under a temporal type (the vectors describe temporal values by it)."""
    if pa.types.is_date32(t) or pa.types.is_time32(t):
        return pa.int32()
    if pa.types.is_date64(t) or pa.types.is_time64(t) or pa.types.is_timestamp(t) or pa.types.is_duration(t):
        return pa.int64()
    return None


def from_json(values: list, t: dict) -> pa.Array:
    typ = arrow_type(t)
    if pa.types.is_struct(typ):
        # as the description has it: a null row is null in every field too
        children = [from_json([None if row is None else row[c.get("name", "")] for row in values], c) for c in t["children"]]
        fields = [typ.field(i) for i in range(typ.num_fields)]
        return pa.StructArray.from_arrays(children, fields=fields, mask=pa.array([row is None for row in values]))
    storage = storage_type(typ)
    if storage is not None:
        return pa.array([None if v is None else int(v) for v in values], type=storage).view(typ)
    return pa.array([py_value(v, typ) for v in values], type=typ)


def py_value(v, typ: pa.DataType):
    if v is None:
        return None
    if pa.types.is_integer(typ):
        return int(v)
    if pa.types.is_float16(typ):
        return np.float16(v)
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ):
        return bytes.fromhex(v)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return [py_value(x, typ.value_type) for x in v]
    if pa.types.is_struct(typ):
        return {typ.field(i).name: py_value(v[typ.field(i).name], typ.field(i).type) for i in range(typ.num_fields)}
    return v


def to_json(arr: pa.Array) -> list:
    storage = storage_type(arr.type)
    if storage is not None:
        arr = arr.view(storage)
    return [json_value(v, arr.type) for v in arr.to_pylist()]


def json_value(v, typ: pa.DataType):
    if v is None:
        return None
    if pa.types.is_integer(typ):
        return str(v) if typ.bit_width == 64 else v
    if pa.types.is_floating(typ):
        return float(v)
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ):
        return v.hex()
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return [json_value(x, typ.value_type) for x in v]
    if pa.types.is_struct(typ):
        return {typ.field(i).name: json_value(v[typ.field(i).name], typ.field(i).type) for i in range(typ.num_fields)}
    return v


def decode(frames: list[bytes]):
    """Decodes frames as a node does; returns (event dict, None) or (None, error)."""
    try:
        return _native.decode_frames(frames), None
    except RuntimeError as err:
        return None, str(err)


def load(folder: str, name: str):
    vector = json.loads((VECTORS / folder / name).read_text())
    frames = [(VECTORS / folder / f).read_bytes() for f in vector["frames"]]
    return vector, frames


ARROW = sorted(p.name for p in (VECTORS / "arrow").glob("*.json"))


@pytest.mark.parametrize("name", ARROW)
def test_arrow_vector_decodes_to_its_values(name):
    vector, frames = load("arrow", name)
    event, error = decode(frames)
    assert error is None
    array = event["value"]
    assert array.type == arrow_type(vector["type"])
    assert to_json(array) == vector["values"]


@pytest.mark.parametrize("name", [n for n in ARROW if not json.loads((VECTORS / "arrow" / n).read_text()).get("decodeOnly")])
def test_pyarrow_array_from_the_description_encodes_to_the_vector_bytes(name):
    vector, frames = load("arrow", name)
    array = from_json(vector["values"], vector["type"])
    encoded = _native.encode_inline(array, int(vector["timestamp"]), int(vector["seq"]))
    assert encoded == frames


def test_parameters_of_every_type_decode():
    vector, frames = load("messages", "data-parameters.json")
    event, error = decode(frames)
    assert error is None
    parameters = event["metadata"]
    for key, described in vector["parameters"].items():
        value = parameters[key]
        kind = described["type"]
        if kind == "int":
            assert value == int(described["value"]), key
        elif kind == "list-int":
            assert value == [int(v) for v in described["value"]], key
        elif kind == "timestamp":
            ns = int(described["value"])
            assert int(value.timestamp()) == ns // 1_000_000_000 and value.microsecond == (ns // 1000) % 1_000_000, key
        else:
            assert value == described["value"], key


ERRORS = {  # how the native core words each class of refusal (tests/support/vector-errors.ts)
    "magic": r"bad magic", "version": r"protocol version 2, this node speaks version 1", "kind": r"kind", "location": r"location",
    "truncated": r"truncated|exceed the frame", "trailing": r"trailing bytes", "payload-length": r"header announced",
    "frames": r"frames, expected", "range": r"outside|shorter|exceed|empty", "null-count": r"null count", "buffers": r"buffers|absent",
    "format": r"format string", "children": r"no children", "depth": r"too deeply", "utf8": r"not valid UTF-8", "parameter": r"parameter",
    "shm-offset": r"not a multiple of 64", "shm-missing": r"does not exist", "shm-range": r"outside the 4096-byte segment",
    "shm-name": r"not a dora-ts segment name",
}


# Drop-token frames are read by the native core's sender side (checked by tests/c-api.test.ts).
INVALID_DATA = sorted(p.name for p in (VECTORS / "invalid").glob("*.json") if json.loads(p.read_text())["message"] == "data")


@pytest.mark.parametrize("name", INVALID_DATA)
def test_invalid_data_frames_are_refused(name):
    vector, frames = load("invalid", name)
    segment = vector.get("segment")
    path = f"/dev/shm/{segment['name']}" if segment else None
    if path:
        with open(path, "wb") as f:
            f.write(bytes(segment["size"]))
    try:
        event, error = decode(frames)
    finally:
        if path:
            os.remove(path)
    assert event is None
    assert re.search(ERRORS[vector["error"]], error), error
