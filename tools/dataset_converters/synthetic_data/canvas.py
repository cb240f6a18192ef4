# Copyright (c) mmadc contributors. All rights reserved.
"""Shapes drawn into an image or a label map at sub-pixel precision.

Both generators rasterise every shape through :class:`Canvas`, so an image
and its labels (a person's silhouette mask, a street scene's class map)
come from the same fixed-point geometry.
"""
from typing import Sequence, Tuple

import cv2
import numpy as np

#: Fractional bits of the fixed-point coordinates passed to OpenCV.
SHIFT = 4
ONE = 1 << SHIFT

Point = Sequence[float]
Size = Tuple[int, int]  # (width, height) of an image


def fixed(point: Point) -> Tuple[int, int]:
    """``point`` (pixels) in OpenCV's fixed-point coordinates."""
    return int(round(point[0] * ONE)), int(round(point[1] * ONE))


def line_width(thickness: float) -> int:
    """A line's width in whole pixels, at least one."""
    return max(1, int(round(thickness)))


class Canvas:
    """An array that shapes are drawn into.

    Args:
        array (np.ndarray): The image or mask, drawn into in place.
        antialiased (bool): Blend the shapes' edges (for images) instead
            of setting exactly the covered pixels (for masks and labels).
    """

    def __init__(self, array: np.ndarray, antialiased: bool) -> None:
        self.array = array
        self.line_type = cv2.LINE_AA if antialiased else cv2.LINE_8

    def line(self, p1: Point, p2: Point, thickness: float, value) -> None:
        cv2.line(self.array, fixed(p1), fixed(p2), value,
                 line_width(thickness), self.line_type, SHIFT)

    def circle(self,
               centre: Point,
               radius: float,
               value,
               thickness: int = -1,
               min_radius: float = 0.5) -> None:
        """A disc (``thickness`` -1) or a ring of ``thickness`` pixels."""
        cv2.circle(self.array, fixed(centre),
                   int(max(min_radius, radius) * ONE), value, thickness,
                   self.line_type, SHIFT)

    def polygon(self, points: Sequence[Point], value) -> None:
        poly = np.array([fixed(p) for p in points], dtype=np.int32)
        cv2.fillPoly(self.array, [poly], value, self.line_type, SHIFT)

    def rect(self, x0: float, y0: float, x1: float, y1: float, value) -> None:
        self.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], value)

    def ellipse(self,
                centre: Point,
                axes: Tuple[float, float],
                value,
                angle: float = 0.0,
                arc: Tuple[int, int] = (0, 360)) -> None:
        """A filled ellipse (or the sector ``arc``, in degrees), its first
        axis turned ``angle`` degrees from the x axis."""
        ax = (max(1, int(axes[0] * ONE)), max(1, int(axes[1] * ONE)))
        cv2.ellipse(self.array, fixed(centre), ax, angle, arc[0], arc[1],
                    value, -1, self.line_type, SHIFT)
