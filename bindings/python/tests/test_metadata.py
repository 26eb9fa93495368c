"""Metadata parameters cross into the native core as one JSON object each way
(dora_metadata_from_json / dora_metadata_to_json); every parameter type must survive."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from dora.node import _Metadata, _read_metadata


def roundtrip(params: dict) -> dict:
    metadata = _Metadata(params)  # owns the handle: keep it alive while reading
    return _read_metadata(metadata.handle)


def test_every_json_type_round_trips_exactly() -> None:
    params = {
        "int": -(2**63),
        "max": 2**63 - 1,
        "float": 0.1,
        "whole_float": 3.0,
        "tiny": 5e-324,
        "bool": False,
        "string": 'quote " backslash \\ nul \x00 é ☃',
        "ints": [1, -2, 3],
        "floats": [1.5, 2],
        "bools": [True, False, True],
        "strings": ["a", "", "ü"],
        "empty": [],
    }
    out = roundtrip(params)
    assert out == {**params, "floats": [1.5, 2.0]}
    assert type(out["whole_float"]) is float and type(out["int"]) is int
    assert [type(v) for v in out["floats"]] == [float, float]


def test_values_json_cannot_carry_take_the_per_parameter_path() -> None:
    when = dt.datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
    out = roundtrip({"nan": math.nan, "inf": -math.inf, "when": when, "with_nan": [1.0, math.nan], "n": 1})
    assert math.isnan(out["nan"]) and out["inf"] == -math.inf
    assert out["when"] == when
    assert out["with_nan"][0] == 1.0 and math.isnan(out["with_nan"][1])
    assert out["n"] == 1


def test_the_message_timestamp_and_none_values_are_not_parameters() -> None:
    assert roundtrip({"timestamp": 5, "gone": None, "kept": "x"}) == {"kept": "x"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mixed": [1, "a"]}, r'parameter "mixed": a list must hold only booleans, only numbers or only strings'),
        ({"nested": {"a": 1}}, r'parameter "nested": objects are not supported'),
        ({"huge": 2**64}, r"int64 range"),
    ],
)
def test_unsupported_values_are_refused_with_the_parameter_named(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _Metadata(params)


def test_values_of_other_python_types_are_refused() -> None:
    with pytest.raises(TypeError, match=r"metadata 'obj': object values are not supported"):
        _Metadata({"obj": object()})
