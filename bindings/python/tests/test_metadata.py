"""Metadata parameters are converted between Python dicts and the core's map in C
(dora/_native, src/native.c); every parameter type must survive."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from dora import _native


def roundtrip(params: dict) -> dict:
    return _native.metadata_roundtrip(params)


def test_every_plain_type_round_trips_exactly() -> None:
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


def test_datetimes_and_non_finite_floats_round_trip() -> None:
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
        _native.metadata_roundtrip(params)


def test_values_of_other_python_types_are_refused() -> None:
    with pytest.raises(TypeError, match=r"metadata 'obj': object values are not supported"):
        _native.metadata_roundtrip({"obj": object()})
