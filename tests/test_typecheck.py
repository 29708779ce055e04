"""Values against annotations (what config and option checks rely on)."""

from __future__ import annotations

import pytest

from harken.typecheck import describe, matches


@pytest.mark.parametrize(
    ("value", "annotation", "ok"),
    [
        (3, int, True),
        (True, int, False),  # bool is not int
        (1.5, int, False),
        (2, float, True),  # an integer is a number
        (False, float, False),
        ("x", str, True),
        (None, int | None, True),
        ("five", int | None, False),
        (["a"], list[str], True),
        ("abc", list[str], False),  # a string is not a list
        (["a", 1], list[str], False),
        ([0.9, 0.99], tuple[float, float], True),
        ([0.9], tuple[float, float], False),
        (("a", "b"), tuple[str, ...], True),
        ({"a": 1}, dict, True),
        ([1], dict, False),
        ("x", str | list[str], True),
        (["x"], str | list[str], True),
        (3, str | list[str], False),
    ],
)
def test_matches(value, annotation, ok):
    assert matches(value, annotation) is ok


def test_describe_says_what_is_expected():
    assert describe(int | None) == "an integer or none"
    assert describe(list[int]) == "a list of integers"
    assert describe(tuple[float, float] | list[float]) == "a list of 2 numbers or a list of numbers"
    assert describe(str | list[str]) == "a string or a list of strings"
