# Copyright (c) mmadc contributors. All rights reserved.
"""Shapes drawn into an image or a label map at sub-pixel precision.

Both generators rasterise every shape through :class:`Canvas`, so an image
and its labels (a person's silhouette mask, a street scene's class map)
come from the same fixed-point geometry.

Lines, and rings without anti-aliasing, are rasterised here: OpenCV's
thick lines (and the rings built from them) cover other pixels in 4.11 (the
last release for numpy 1) than in 4.12 and later. A pixel is covered when
its centre lies within half the width of the segment (or the circle),
tested with float64 element-wise arithmetic, which IEEE 754 defines
exactly, on every numpy; anti-aliased, a pixel within one more half pixel
is blended by its distance. OpenCV still fills polygons, discs and
ellipses (anti-aliased in images): those were measured identical on
OpenCV 4.11, 4.14 and 5.1 (tests/test_datasets/test_synthetic_checksums.py
pins them).
"""
import math
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


def _grid_point(point: Point) -> Tuple[float, float]:
    """``point`` rounded to the fixed-point grid, in pixels (exact)."""
    x, y = fixed(point)
    return x / ONE, y / ONE


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
        self.antialiased = antialiased
        self.line_type = cv2.LINE_AA if antialiased else cv2.LINE_8

    def line(self, p1: Point, p2: Point, thickness: float, value) -> None:
        """A segment of ``thickness`` pixels with round ends; anti-aliased,
        a pixel takes ``value`` by the part of a pixel's width its centre
        lies inside the outline."""
        a, b = _grid_point(p1), _grid_point(p2)
        half = line_width(thickness) / 2
        fringe = half + (0.5 if self.antialiased else 0.0)
        box = self._box(
            min(a[0], b[0]) - fringe,
            min(a[1], b[1]) - fringe,
            max(a[0], b[0]) + fringe,
            max(a[1], b[1]) + fringe)
        if box is None:
            return
        ys, xs = box
        dx, dy = xs - a[0], ys - a[1]
        ux, uy = b[0] - a[0], b[1] - a[1]
        length2 = ux * ux + uy * uy
        # the point of the segment nearest to each pixel centre
        t = np.clip((dx * ux + dy * uy) / length2, 0, 1) if length2 else 0.0
        ex, ey = dx - t * ux, dy - t * uy
        dist2 = ex * ex + ey * ey
        if self.antialiased:
            self._blend(box, np.clip(fringe - np.sqrt(dist2), 0, 1), value)
        else:
            self._set(box, dist2 <= half * half, value)

    def _box(self, x0: float, y0: float, x1: float, y1: float):
        """Pixel centres ``(ys, xs)`` (float64 columns and rows) of the
        array inside a box, or None if the box misses the array."""
        h, w = self.array.shape[:2]
        c0, c1 = max(0, math.ceil(x0)), min(w - 1, math.floor(x1))
        r0, r1 = max(0, math.ceil(y0)), min(h - 1, math.floor(y1))
        if c0 > c1 or r0 > r1:
            return None
        return (np.arange(r0, r1 + 1, dtype=np.float64)[:, None],
                np.arange(c0, c1 + 1, dtype=np.float64)[None, :])

    def _region(self, box) -> np.ndarray:
        ys, xs = box
        r0, c0 = int(ys[0, 0]), int(xs[0, 0])
        return self.array[r0:r0 + ys.shape[0], c0:c0 + xs.shape[1]]

    def _set(self, box, covered: np.ndarray, value) -> None:
        self._region(box)[covered] = value

    def _blend(self, box, alpha: np.ndarray, value) -> None:
        """Mix ``value`` into the box by ``alpha``, rounded half to even."""
        region = self._region(box)
        if region.ndim == 3:
            alpha = alpha[..., None]
        mixed = region * (1 - alpha) + np.asarray(value, np.float64) * alpha
        if np.issubdtype(region.dtype, np.integer):
            mixed = np.round(mixed)
        region[...] = mixed

    def circle(self,
               centre: Point,
               radius: float,
               value,
               thickness: int = -1,
               min_radius: float = 0.5) -> None:
        """A disc (``thickness`` -1) or a ring of ``thickness`` pixels."""
        radius_fixed = int(max(min_radius, radius) * ONE)
        if thickness < 0 or self.antialiased:
            cv2.circle(self.array, fixed(centre), radius_fixed, value,
                       thickness, self.line_type, SHIFT)
            return
        c, r = _grid_point(centre), radius_fixed / ONE
        outer, inner = r + thickness / 2, max(0.0, r - thickness / 2)
        box = self._box(c[0] - outer, c[1] - outer, c[0] + outer, c[1] + outer)
        if box is None:
            return
        ys, xs = box
        dist2 = (xs - c[0])**2 + (ys - c[1])**2
        self._set(box, (dist2 <= outer * outer) & (dist2 >= inner * inner),
                  value)

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
