"""Colours of the demo scenes: the Color type, HSV colours as stored, and the backgrounds' two-colour fill.

An HSV colour is stored as RGB rounded to 4 places; the backgrounds of both scene families (synthetic.py,
scene_backgrounds.py) are two-colour fills."""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

Color = tuple[float, float, float]


def hsv(h: float, s: float, v: float) -> Color:
    """The colour of hue ``h`` (wrapping), saturation ``s`` and value ``v``, as RGB rounded to 4 places."""
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r, 4), round(g, 4), round(b, 4))


@dataclass(frozen=True)
class TwoColourFill:
    """A pattern of ``kind`` between ``color_a`` and ``color_b``. A subclass names its kinds (``KINDS``) and what
    it is (``WHAT``, for the error on an unknown kind), and adds the pattern's parameters."""

    KINDS = ()
    WHAT = "fill"

    kind: str
    color_a: Color
    color_b: Color

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown {self.WHAT} {self.kind!r}; expected one of {self.KINDS}")
