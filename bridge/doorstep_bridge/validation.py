"""Shared voluptuous validators for the configuration schemas.

Each feature package declares the schema of its own config section next to the
frozen dataclass it produces; these helpers keep the error messages uniform.
"""

from __future__ import annotations

import math
from typing import Any

import voluptuous as vol

Point = tuple[int, int]
Polygon = tuple[Point, ...]

#: The largest mask or zone coordinate, in pixels: far beyond any camera's picture
#: (8K is 7680 wide), yet small enough that scaling and OpenCV's 32-bit point arrays
#: never overflow (a point of 3000000000 stopped every recording).
MAX_COORDINATE = 100_000


def number(minimum: float | None = None, maximum: float | None = None) -> Any:
    """A real number (not a bool), optionally bounded."""

    def validate(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid("expected a number")
        # YAML reads .nan and .inf as numbers; NaN passes every bound, and neither is a
        # length of time or a size (retention would stop on them).
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            finite = False
        if not finite:
            raise vol.Invalid("expected a finite number")
        if minimum is not None and value < minimum:
            raise vol.Invalid(f"expected a number >= {minimum:g}")
        if maximum is not None and value > maximum:
            raise vol.Invalid(f"expected a number <= {maximum:g}")
        return float(value)

    return validate


def integer(minimum: int | None = None, maximum: int | None = None) -> Any:
    """A whole number (not a bool), optionally bounded."""

    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected a whole number")
        if minimum is not None and value < minimum:
            raise vol.Invalid(f"expected a whole number >= {minimum}")
        if maximum is not None and value > maximum:
            raise vol.Invalid(f"expected a whole number <= {maximum}")
        return value

    return validate


def boolean(value: Any) -> bool:
    """A YAML boolean (true/false), nothing looser."""
    if not isinstance(value, bool):
        raise vol.Invalid("expected true or false")
    return value


def text(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected a non-empty string")
    return value


def polygon(value: Any) -> Polygon:
    """A polygon: at least three [x, y] points in frame pixels."""
    if not isinstance(value, list) or len(value) < 3:
        raise vol.Invalid("expected a polygon: a list of at least 3 [x, y] points")
    points: list[Point] = []
    for index, point in enumerate(value):
        if (
            not isinstance(point, list | tuple)
            or len(point) != 2
            or any(isinstance(c, bool) or not isinstance(c, int | float) for c in point)
        ):
            raise vol.Invalid(f"point {index}: expected [x, y] with two numbers")
        if point[0] < 0 or point[1] < 0:
            raise vol.Invalid(f"point {index}: coordinates must be >= 0")
        # Not math.isfinite: it cannot take an integer too large for a float.
        if not all(c <= MAX_COORDINATE for c in point):  # False for NaN too
            raise vol.Invalid(f"point {index}: expected finite coordinates <= {MAX_COORDINATE}")
        points.append((round(point[0]), round(point[1])))
    return tuple(points)


def polygons(value: Any) -> tuple[Polygon, ...]:
    """A list of polygons."""
    if not isinstance(value, list):
        raise vol.Invalid("expected a list of polygons")
    result = []
    for index, item in enumerate(value):
        try:
            result.append(polygon(item))
        except vol.Invalid as err:
            raise vol.Invalid(err.msg, path=[index]) from None
    return tuple(result)
