# Copyright (c) mmadc contributors. All rights reserved.
"""Synthetic Cityscapes-style road scenes.

Cityscapes cannot be downloaded here, so this module paints simple street
scenes (sky, facades, a road in perspective, sidewalks, vegetation, street
furniture and traffic participants) together with pixel-exact labels, in the
folder layout mmseg's ``CityscapesDataset`` reads unchanged::

    out_dir/
    ├── leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png
    ├── gtFine/{train,val}/<city>/<stem>_gtFine_labelTrainIds.png
    │                             (and <stem>_gtFine_labelIds.png)
    └── synthetic_manifest.json

where ``<stem>`` is ``<city>_<seq>_<frame>``, e.g. ``aachen_000003_000019``.

Labels are the 19 Cityscapes train ids (0 road ... 18 bicycle); 255 (ignore)
marks only the ego-vehicle bonnet some images show at the bottom. Each class
has its own colour range, texture and shape, so a small FCN learns them.
Every class is guaranteed to occur in each split.
"""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .synthetic_utils import (OutputJournal, ProgressFn, check_counts,
                              prepare_output, split_seed, write_manifest)

Size = Tuple[int, int]  # (width, height)

GENERATOR_NAME = 'synthetic_cityscapes'

CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                      'traffic light', 'traffic sign', 'vegetation', 'terrain',
                      'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                      'motorcycle', 'bicycle')
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN,
 SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)
IGNORE = 255
# Cityscapes label ids of the train ids (for *_gtFine_labelIds.png); the
# ignore region is the ego vehicle, whose label id is 1.
LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31,
             32, 33)
EGO_VEHICLE_ID = 1

# Drawn (almost) always / drawn with a probability; every optional class is
# also forced into some image of each split so the split covers all 19.
OPTIONAL_CLASSES = (WALL, FENCE, POLE, LIGHT, SIGN, TERRAIN, PERSON, RIDER,
                    CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE)
OPTIONAL_PROB = {
    WALL: 0.4,
    FENCE: 0.4,
    POLE: 0.8,
    LIGHT: 0.5,
    SIGN: 0.6,
    TERRAIN: 0.6,
    PERSON: 0.7,
    RIDER: 0.35,
    CAR: 0.85,
    TRUCK: 0.3,
    BUS: 0.25,
    TRAIN: 0.15,
    MOTORCYCLE: 0.3,
    BICYCLE: 0.35
}
# Forced classes are redrawn in this order: large before small.
REDRAW_ORDER = (SKY, BUILDING, ROAD, SIDEWALK, TERRAIN, VEGETATION, WALL,
                FENCE, TRAIN, BUS, TRUCK, CAR, PERSON, RIDER, MOTORCYCLE,
                BICYCLE, POLE, SIGN, LIGHT)
CITIES = {
    'train': ('aachen', 'bremen', 'zurich'),
    'val': ('frankfurt', 'lindau', 'munster')
}
SPLIT_CODES = {'train': 0, 'val': 1}

# Colours are RGB; the image is converted to BGR only when written.
CAR_COLOURS = ((170, 25, 25), (25, 45, 140), (185, 185, 190), (30, 30, 35),
               (225, 225, 225), (55, 95, 60), (115, 115, 125))
BUILDING_COLOURS = ((125, 115, 105), (150, 132, 112), (172, 164, 150),
                    (112, 92, 80), (145, 70, 55), (95, 98, 108))
BUS_COLOURS = ((230, 190, 25), (200, 35, 30), (35, 95, 170))
SKIN = ((240, 205, 180), (220, 170, 130), (180, 130, 95), (110, 75, 55))

_SHIFT = 4
_ONE = 1 << _SHIFT


def _p(pt: Sequence[float]) -> Tuple[int, int]:
    return int(round(pt[0] * _ONE)), int(round(pt[1] * _ONE))


def _jit(rng: np.random.Generator,
         colour: Sequence[int],
         amount: float = 12) -> np.ndarray:
    """Colour with a little random variation."""
    return np.clip(
        np.asarray(colour, np.float32) + rng.normal(0, amount, 3), 0, 255)


class _Scene:
    """An RGB float image and its train-id label map, painted together."""

    def __init__(self, rng: np.random.Generator, width: int, height: int):
        self.rng = rng
        self.w, self.h = width, height
        self.img = np.zeros((height, width, 3), np.float32)
        self.lbl = np.full((height, width), IGNORE, np.uint8)

    def mask(self, draw: Callable[[np.ndarray], None]) -> np.ndarray:
        m = np.zeros((self.h, self.w), np.uint8)
        draw(m)
        return m > 0

    def paint(self,
              mask: np.ndarray,
              colour: Sequence[float],
              cls: int,
              noise: float = 4.0,
              blotch: float = 0.0) -> None:
        """Fill ``mask`` with a textured colour and label it ``cls``."""
        ys, xs = np.nonzero(mask)
        if len(ys) == 0:
            return
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        bh, bw = y1 - y0, x1 - x0
        tex = np.broadcast_to(np.asarray(colour, np.float32),
                              (bh, bw, 3)).copy()
        if noise:
            tex += self.rng.normal(0, noise, (bh, bw, 1))
        if blotch:
            cells = self.rng.normal(0, blotch,
                                    (max(2, bh // 6), max(2, bw // 6), 1))
            tex += cv2.resize(
                cells.astype(np.float32), (bw, bh),
                interpolation=cv2.INTER_LINEAR)[..., None]
        sub = mask[y0:y1, x0:x1]
        self.img[y0:y1, x0:x1][sub] = tex[sub]
        self.lbl[y0:y1, x0:x1][sub] = cls

    # Shape helpers: each paints one primitive.
    def poly(self, pts, colour, cls, **tex) -> None:
        arr = np.array([_p(q) for q in pts], np.int32)
        self.paint(
            self.mask(lambda m: cv2.fillPoly(m, [arr], 1, cv2.LINE_8, _SHIFT)),
            colour, cls, **tex)

    def rect(self, x0, y0, x1, y1, colour, cls, **tex) -> None:
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour, cls, **tex)

    def circle(self, c, r, colour, cls, thickness: int = -1, **tex) -> None:
        self.paint(
            self.mask(
                lambda m: cv2.circle(m, _p(c), max(_ONE // 2, int(
                    r * _ONE)), 1, thickness, cv2.LINE_8, _SHIFT)), colour,
            cls, **tex)

    def line(self, p1, p2, t, colour, cls, **tex) -> None:
        self.paint(
            self.mask(lambda m: cv2.line(m, _p(p1), _p(
                p2), 1, max(1, int(round(t))), cv2.LINE_8, _SHIFT)), colour,
            cls, **tex)

    def ellipse(self, c, axes, colour, cls, arc=(0, 360), **tex) -> None:
        ax = (max(1, int(axes[0] * _ONE)), max(1, int(axes[1] * _ONE)))
        start, end = arc
        self.paint(
            self.mask(lambda m: cv2.ellipse(m, _p(c), ax, 0, start, end, 1, -1,
                                            cv2.LINE_8, _SHIFT)), colour, cls,
            **tex)


class _Layout:
    """Road geometry: horizon, vanishing point and the kerb lines."""

    def __init__(self, rng: np.random.Generator, w: int, h: int):
        self.w, self.h = w, h
        self.horizon = h * rng.uniform(0.38, 0.5)
        self.vx = w * rng.uniform(0.35, 0.65)
        half_far = w * 0.015
        # Road edges at the bottom row, often beyond the image borders.
        self.road_l = (self.vx - half_far, w * rng.uniform(-0.35, 0.15))
        self.road_r = (self.vx + half_far, w * rng.uniform(0.85, 1.35))
        walk = w * rng.uniform(0.15, 0.35)
        self.walk_l = (self.road_l[0] - w * 0.03, self.road_l[1] - walk)
        self.walk_r = (self.road_r[0] + w * 0.03, self.road_r[1] + walk)
        # Pixels per metre at the bottom row; shrinks linearly to 0 at the
        # horizon (flat ground, pinhole camera).
        self.ppm_bottom = 0.3 * h

    def x_at(self, edge: Tuple[float, float], y: float) -> float:
        t = (y - self.horizon) / (self.h - self.horizon)
        return edge[0] + t * (edge[1] - edge[0])

    def ppm(self, y: float) -> float:
        return self.ppm_bottom * max(0.0, y - self.horizon) / (
            self.h - self.horizon)


# ---------------------------------------------------------------------------
# Background layers
# ---------------------------------------------------------------------------


def _sky(s: _Scene, lay: _Layout) -> None:
    rng = s.rng
    top = _jit(rng, (95, 140, 205), 15)
    bottom = _jit(rng, (195, 215, 235), 10)
    t = np.linspace(0, 1, s.h, dtype=np.float32)[:, None, None]
    s.img[:] = top + t * (bottom - top)
    s.lbl[:] = SKY
    for _ in range(int(rng.integers(0, 4))):
        c = (rng.uniform(0, s.w), rng.uniform(0, lay.horizon * 0.6))
        s.ellipse(
            c, (rng.uniform(0.05, 0.2) * s.w, rng.uniform(0.02, 0.06) * s.h),
            _jit(rng, (235, 238, 242), 6),
            SKY,
            noise=2,
            blotch=4)


def _buildings(s: _Scene, lay: _Layout) -> None:
    rng = s.rng
    x, base = -rng.uniform(0, 0.1) * s.w, lay.horizon + 0.03 * s.h
    while x < s.w:
        bw = rng.uniform(0.1, 0.35) * s.w
        if rng.random() < 0.15:  # a gap shows the sky
            x += bw * 0.6
            continue
        top = rng.uniform(0.02, max(0.05, lay.horizon / s.h - 0.12)) * s.h
        colour = _jit(rng,
                      BUILDING_COLOURS[rng.integers(len(BUILDING_COLOURS))],
                      10)
        s.rect(x, top, x + bw, base, colour, BUILDING, noise=4, blotch=6)
        # Windows: a regular grid, dark or reflecting the sky.
        win = _jit(rng, (45, 55, 75) if rng.random() < 0.7 else
                   (150, 175, 200), 8)
        ww, wh = rng.uniform(0.012, 0.03) * s.w, rng.uniform(0.03, 0.06) * s.h
        gx, gy = ww * rng.uniform(1.6, 2.4), wh * rng.uniform(1.5, 2.2)
        for wy in np.arange(top + gy * 0.5, base - gy, gy):
            for wx in np.arange(x + gx * 0.4, x + bw - ww, gx):
                s.rect(wx, wy, wx + ww, wy + wh, win, BUILDING, noise=3)
        x += bw


def _ground(s: _Scene, lay: _Layout, terrain: bool) -> None:
    rng = s.rng
    hy, w, h = lay.horizon, s.w, s.h
    walk = _jit(rng, (188, 175, 182), 10)
    s.rect(-1, hy, w + 1, h + 1, walk, SIDEWALK, noise=4)
    # Paving joints: lines converging to the vanishing point and rows.
    joint = walk * 0.8
    for frac in np.linspace(0, 1, 7):
        for a, b in ((lay.walk_l, lay.road_l), (lay.road_r, lay.walk_r)):
            bottom = b[1] + frac * (a[1] - b[1])
            s.line((lay.vx, hy), (bottom, h), 1, joint, SIDEWALK, noise=2)
    for k in range(1, 9):
        y = hy + (h - hy) * (k / 9)**1.6
        s.line((0, y), (w, y), 1, joint, SIDEWALK, noise=2)
    if terrain:
        grass = _jit(rng, (140, 155, 75), 12)
        for edge, side in ((lay.walk_l, -1), (lay.walk_r, 1)):
            if rng.random() < 0.75:
                far = w * 2 * side + lay.vx
                s.poly([(edge[0], hy), (far, hy), (far, h), (edge[1], h)],
                       grass,
                       TERRAIN,
                       noise=9,
                       blotch=6)
    road = _jit(rng, (82, 76, 88), 6)
    s.poly([(lay.road_l[0], hy), (lay.road_r[0], hy), (lay.road_r[1], h),
            (lay.road_l[1], h)],
           road,
           ROAD,
           noise=6,
           blotch=3)
    # Dashed centre line and kerb shadows, still road.
    centre = ((lay.road_l[0] + lay.road_r[0]) / 2,
              (lay.road_l[1] + lay.road_r[1]) / 2)
    for k in range(12):
        t0, t1 = (k / 12)**1.5, ((k + 0.5) / 12)**1.5
        y0, y1 = hy + t0 * (h - hy), hy + t1 * (h - hy)
        width = max(1, 0.12 * lay.ppm((y0 + y1) / 2))
        s.line((lay.x_at(centre, y0), y0), (lay.x_at(centre, y1), y1),
               width,
               _jit(rng, (225, 225, 220), 5),
               ROAD,
               noise=3)


def _ego_vehicle(s: _Scene) -> None:
    """The bonnet of the recording car: ignore label, as in Cityscapes."""
    rng = s.rng
    s.ellipse((s.w / 2 + rng.normal(0, 0.05 * s.w), s.h * 1.04),
              (s.w * rng.uniform(0.5, 0.8), s.h * rng.uniform(0.06, 0.1)),
              _jit(rng, (35, 38, 45), 6),
              IGNORE,
              noise=2)


# ---------------------------------------------------------------------------
# Objects (drawn far to near). ``x``: centre, ``y``: ground contact row,
# ``m``: pixels per metre at that row.
# ---------------------------------------------------------------------------


def _tree(s: _Scene, x, y, m) -> None:
    rng = s.rng
    trunk_h = m * rng.uniform(2.0, 3.5)
    s.line((x, y), (x, y - trunk_h),
           max(1, 0.3 * m),
           _jit(rng, (90, 65, 45), 8),
           VEGETATION,
           noise=5)
    green = _jit(rng, (60, 120, 40), 12)
    cy = y - trunk_h - m * 1.2
    for _ in range(int(rng.integers(3, 7))):
        c = (x + rng.normal(0, 1.0) * m, cy + rng.normal(0, 0.8) * m)
        s.circle(
            c,
            m * rng.uniform(1.0, 2.0),
            _jit(rng, green, 8),
            VEGETATION,
            noise=10,
            blotch=10)


def _hedge(s: _Scene, x, y, m) -> None:
    rng = s.rng
    half, hh = m * rng.uniform(2, 6), m * rng.uniform(0.8, 1.6)
    s.ellipse((x, y - hh / 2), (half, hh / 2),
              _jit(rng, (55, 110, 40), 12),
              VEGETATION,
              noise=10,
              blotch=10)


def _wall(s: _Scene, x, y, m) -> None:
    rng = s.rng
    half, hh = m * rng.uniform(3, 9), m * rng.uniform(1.0, 2.5)
    colour = _jit(rng, (205, 190, 150), 10)
    s.rect(x - half, y - hh, x + half, y, colour, WALL, noise=3)
    for yy in np.arange(y - hh + 0.3 * m, y, max(2.0, 0.35 * m)):
        s.line((x - half, yy), (x + half, yy), 1, colour * 0.85, WALL, noise=2)


def _fence(s: _Scene, x, y, m) -> None:
    rng = s.rng
    half, hh = m * rng.uniform(3, 10), m * rng.uniform(1.0, 2.0)
    colour = _jit(rng, (120, 135, 110) if rng.random() < 0.5 else
                  (150, 112, 72), 10)
    s.rect(x - half, y - hh, x + half, y, colour, FENCE, noise=3)
    step = max(2.0, 0.25 * m)
    for xx in np.arange(x - half, x + half, step):  # slats
        s.line((xx, y - hh), (xx, y),
               max(1, step / 3),
               colour * 0.6,
               FENCE,
               noise=2)
    s.line((x - half, y - hh * 0.8), (x + half, y - hh * 0.8),
           max(1, step / 3),
           colour * 0.6,
           FENCE,
           noise=2)


def _pole(s: _Scene, x, y, m, top: Optional[str] = None) -> None:
    rng = s.rng
    ph = m * rng.uniform(4, 7)
    s.line((x, y), (x, y - ph),
           max(1, 0.15 * m),
           _jit(rng, (135, 135, 140), 8),
           POLE,
           noise=3)
    if top == 'light':
        _traffic_light(s, x, y - ph, m)
    elif top == 'sign':
        _traffic_sign(s, x, y - ph * rng.uniform(0.55, 0.9), m)


def _traffic_light(s: _Scene, x, y, m) -> None:
    rng = s.rng
    bw, bh = max(2.0, 0.4 * m), max(4.0, 1.0 * m)
    s.rect(
        x - bw / 2,
        y,
        x + bw / 2,
        y + bh,
        _jit(rng, (32, 32, 32), 4),
        LIGHT,
        noise=2)
    lamps = ((230, 35, 30), (250, 170, 20), (35, 215, 80))
    lit = rng.integers(3)
    for k, colour in enumerate(lamps):
        c = (x, y + bh * (k + 0.5) / 3)
        col = colour if k == lit else np.asarray(colour) * 0.3
        s.circle(c, bw * 0.3, col, LIGHT, noise=2)


def _traffic_sign(s: _Scene, x, y, m) -> None:
    rng = s.rng
    r = max(2.0, 0.4 * m)
    kind = rng.integers(3)
    if kind == 0:  # prohibition: red ring, white disc
        s.circle((x, y), r, (205, 25, 35), SIGN, noise=2)
        s.circle((x, y), r * 0.7, (240, 240, 240), SIGN, noise=2)
    elif kind == 1:  # mandatory: blue disc with a white bar
        s.circle((x, y), r, (25, 70, 185), SIGN, noise=2)
        s.line((x - r * 0.5, y), (x + r * 0.5, y),
               max(1, r * 0.3), (240, 240, 240),
               SIGN,
               noise=2)
    else:  # warning / priority: yellow diamond
        s.poly([(x, y - r), (x + r, y), (x, y + r), (x - r, y)],
               (240, 200, 10),
               SIGN,
               noise=2)


def _wheel(s: _Scene, c, r, cls) -> None:
    s.circle(c, r, (22, 22, 24), cls, noise=2)
    s.circle(c, r * 0.45, (120, 120, 125), cls, noise=2)


def _car(s: _Scene, x, y, m) -> None:
    rng = s.rng
    body = _jit(rng, CAR_COLOURS[rng.integers(len(CAR_COLOURS))], 10)
    glass = _jit(rng, (50, 60, 75), 6)
    height = 1.5 * m
    if rng.random() < 0.5:  # side view
        half = 2.1 * m
        s.rect(
            x - half,
            y - 0.95 * height * 0.6,
            x + half,
            y - 0.15 * m,
            body,
            CAR,
            noise=3)
        s.poly([(x - half * 0.6, y - height * 0.55),
                (x - half * 0.35, y - height), (x + half * 0.35, y - height),
                (x + half * 0.7, y - height * 0.55)],
               body,
               CAR,
               noise=3)
        s.poly([(x - half * 0.5, y - height * 0.6),
                (x - half * 0.3, y - height * 0.92),
                (x + half * 0.3, y - height * 0.92),
                (x + half * 0.6, y - height * 0.6)],
               glass,
               CAR,
               noise=3)
        for wx in (x - half * 0.65, x + half * 0.65):
            _wheel(s, (wx, y - 0.35 * m), 0.35 * m, CAR)
    else:  # rear view
        half = 0.9 * m
        s.rect(
            x - half,
            y - height * 0.6,
            x + half,
            y - 0.1 * m,
            body,
            CAR,
            noise=3)
        s.poly([(x - half * 0.95, y - height * 0.6),
                (x - half * 0.7, y - height), (x + half * 0.7, y - height),
                (x + half * 0.95, y - height * 0.6)],
               body,
               CAR,
               noise=3)
        s.rect(
            x - half * 0.65,
            y - height * 0.95,
            x + half * 0.65,
            y - height * 0.65,
            glass,
            CAR,
            noise=3)
        for side in (-1, 1):
            s.rect(
                x + side * half * 0.9,
                y - height * 0.5,
                x + side * half * 0.6,
                y - height * 0.4, (200, 20, 20),
                CAR,
                noise=2)
            s.rect(
                x + side * half * 0.9,
                y - 0.2 * m,
                x + side * half * 0.55,
                y, (22, 22, 24),
                CAR,
                noise=2)


def _box_vehicle(s: _Scene, x, y, m, cls: int, length: float, height: float,
                 colour, windows: str) -> None:
    """Side or rear view of a truck, bus or train."""
    rng = s.rng
    glass = _jit(rng, (45, 55, 70), 6)
    side_view = cls == TRAIN or rng.random() < 0.6
    half = length / 2 * m if side_view else 1.25 * m
    top = y - height * m
    s.rect(
        x - half, top, x + half, y - 0.3 * m, colour, cls, noise=3, blotch=2)
    if cls == TRUCK:  # cab at the front, lighter cargo box behind
        cab = _jit(rng, (rng.integers(40, 220), rng.integers(
            40, 220), rng.integers(40, 220)), 5)
        if side_view:
            s.rect(
                x + half - 2.0 * m,
                top + 0.8 * m,
                x + half,
                y - 0.3 * m,
                cab,
                cls,
                noise=3)
            s.rect(
                x + half - 1.2 * m,
                top + 1.0 * m,
                x + half - 0.2 * m,
                top + 1.8 * m,
                glass,
                cls,
                noise=2)
        else:
            s.rect(
                x - half,
                y - 1.0 * m,
                x + half,
                y - 0.3 * m,
                cab,
                cls,
                noise=3)
    elif windows == 'row' and side_view:
        s.rect(
            x - half * 0.95,
            top + 0.35 * m,
            x + half * 0.95,
            top + 1.4 * m,
            glass,
            cls,
            noise=2)
        for wx in np.arange(x - half * 0.95, x + half * 0.95, 1.6 * m):
            s.line((wx, top + 0.35 * m), (wx, top + 1.4 * m),
                   max(1, 0.15 * m),
                   colour,
                   cls,
                   noise=2)
    elif windows == 'row':
        s.rect(
            x - half * 0.85,
            top + 0.3 * m,
            x + half * 0.85,
            top + 1.5 * m,
            glass,
            cls,
            noise=2)
    if cls == TRAIN:  # coloured band and pantograph
        s.rect(
            x - half,
            y - 1.2 * m,
            x + half,
            y - 0.8 * m,
            _jit(rng, (200, 25, 25), 8),
            cls,
            noise=2)
        s.line((x - 2 * m, top), (x, top - 0.8 * m), max(1, 0.1 * m),
               (40, 40, 40), cls)
        s.line((x, top - 0.8 * m), (x + 2 * m, top), max(1, 0.1 * m),
               (40, 40, 40), cls)
    if side_view:
        for wx in (x - half * 0.75, x + half * 0.75):
            _wheel(s, (wx, y - 0.45 * m), 0.45 * m, cls)
    else:
        for side in (-1, 1):
            s.rect(
                x + side * half * 0.95,
                y - 0.35 * m,
                x + side * half * 0.6,
                y, (22, 22, 24),
                cls,
                noise=2)


def _truck(s: _Scene, x, y, m) -> None:
    colour = _jit(s.rng, (225, 225, 220), 12)
    _box_vehicle(s, x, y, m, TRUCK, 7.5, 3.3, colour, 'none')


def _bus(s: _Scene, x, y, m) -> None:
    colour = _jit(s.rng, BUS_COLOURS[s.rng.integers(len(BUS_COLOURS))], 8)
    _box_vehicle(s, x, y, m, BUS, 11.0, 3.1, colour, 'row')


def _train(s: _Scene, x, y, m) -> None:
    colour = _jit(s.rng, (235, 235, 230), 6)
    _box_vehicle(s, x, y, m, TRAIN, s.rng.uniform(18, 30), 3.6, colour, 'row')


def _figure(s: _Scene, x, y, m, cls: int, seated: bool) -> None:
    """A pedestrian (standing) or a rider (seated, leaning, helmeted)."""
    rng = s.rng
    shirt = _jit(
        rng,
        (rng.integers(20, 235), rng.integers(20, 235), rng.integers(20, 235)),
        5)
    trousers = _jit(
        rng,
        (rng.integers(20, 120), rng.integers(20, 120), rng.integers(40, 160)),
        5)
    skin = _jit(rng, SKIN[rng.integers(len(SKIN))], 6)
    t = max(1, 0.18 * m)
    hip = np.array([x, y - (0.55 if seated else 0.9) * m])
    lean = 0.35 if seated else 0.0
    neck = hip + np.array([lean, -0.65]) * m
    if seated:  # legs down to the pedals
        s.line(hip, (x + 0.25 * m, y - 0.3 * m), t, trousers, cls)
        s.line(hip, (x - 0.2 * m, y - 0.3 * m), t, trousers, cls)
    else:
        stride = rng.uniform(0, 0.25) * m
        s.line(hip, (x - stride, y), t, trousers, cls)
        s.line(hip, (x + stride, y), t, trousers, cls)
    s.line(hip, neck, 0.35 * m, shirt, cls, noise=3)
    hand = neck + np.array([0.45 if seated else 0.1, 0.45]) * m
    s.line(neck, hand, max(1, 0.12 * m), shirt, cls)
    head = neck + np.array([0.05, -0.15]) * m
    s.circle(head, 0.13 * m, skin, cls, noise=2)
    if seated:  # helmet
        s.ellipse(
            head, (0.15 * m, 0.13 * m),
            _jit(rng, (230, 60, 30), 40),
            cls,
            arc=(180, 360),
            noise=2)
    else:
        s.ellipse(
            head, (0.13 * m, 0.13 * m),
            _jit(rng, (50, 35, 25), 10),
            cls,
            arc=(180, 360),
            noise=2)


def _two_wheeler(s: _Scene, x, y, m, cls: int, with_rider: bool) -> None:
    rng = s.rng
    r = (0.33 if cls == BICYCLE else 0.3) * m
    back, front = (x - 0.55 * m, y - r), (x + 0.55 * m, y - r)
    if with_rider:
        _figure(s, x - 0.05 * m, y - 0.1 * m, m, RIDER, seated=True)
    if cls == BICYCLE:
        frame = _jit(rng, (rng.integers(30, 230), rng.integers(
            30, 230), rng.integers(30, 230)), 5)
        thin = max(1, 0.05 * m)
        for c in (back, front):
            s.circle(c, r, (25, 25, 25), cls, thickness=max(1, int(thin)))
        seat, bar = (x - 0.1 * m, y - 0.95 * m), (x + 0.4 * m, y - 1.0 * m)
        for p1, p2 in ((back, seat), (seat, (x, y - r)), ((x, y - r), back),
                       ((x, y - r), bar), (seat, bar), (bar, front)):
            s.line(p1, p2, thin, frame, cls, noise=2)
    else:
        body = _jit(rng, (40, 40, 45) if rng.random() < 0.6 else (190, 30, 30),
                    8)
        _wheel(s, back, r, cls)
        _wheel(s, front, r, cls)
        s.poly([(back[0], y - r * 1.3), (x - 0.1 * m, y - 0.85 * m),
                (x + 0.45 * m, y - 0.8 * m), (front[0], y - r * 1.2),
                (x, y - r * 0.8)],
               body,
               cls,
               noise=3)
        s.line((x + 0.45 * m, y - 0.8 * m), (front[0], y - r),
               max(1, 0.08 * m), (30, 30, 30), cls)


# ---------------------------------------------------------------------------
# Scene composition
# ---------------------------------------------------------------------------


def _place(rng: np.random.Generator,
           lay: _Layout,
           where: str,
           near: float = 1.0) -> Tuple[float, float]:
    """A ground contact point ``(x, y)`` on the road or the sidewalks.

    ``near`` < 1 keeps objects towards the horizon (large ones would fill
    the image otherwise).
    """
    dy = lay.h - lay.horizon
    y = lay.horizon + dy * (0.08 + near * 0.92 * rng.random()**1.3)
    if where == 'road':
        x0, x1 = lay.x_at(lay.road_l, y), lay.x_at(lay.road_r, y)
        x = x0 + (x1 - x0) * rng.uniform(0.1, 0.9)
    elif where == 'kerb':
        edge = lay.road_l if rng.random() < 0.5 else lay.road_r
        x = lay.x_at(edge, y) + rng.normal(0, 0.02) * lay.w
    else:  # sidewalk or further out
        if rng.random() < 0.5:
            x0, x1 = lay.x_at(lay.walk_l, y), lay.x_at(lay.road_l, y)
        else:
            x0, x1 = lay.x_at(lay.road_r, y), lay.x_at(lay.walk_r, y)
        x = rng.uniform(x0, x1)
    return float(x), float(y)


def _object_specs(rng: np.random.Generator, cls: int, lay: _Layout,
                  forced: bool) -> List[Tuple[float, Callable]]:
    """Instances of one class as ``(ground_y, draw(scene))`` pairs."""
    count = 1 if forced else int(rng.integers(1, 4))
    specs = []
    for _ in range(count):
        if cls in (WALL, FENCE):
            x = rng.uniform(0, lay.w)
            y = lay.horizon + (lay.h - lay.horizon) * rng.uniform(0.05, 0.3)
            fn = _wall if cls == WALL else _fence
        elif cls in (POLE, LIGHT, SIGN):
            x, y = _place(rng, lay, 'kerb', near=0.7)
            top = {POLE: None, LIGHT: 'light', SIGN: 'sign'}[cls]
            fn = (lambda s, x, y, m, top=top: _pole(s, x, y, m, top))
        elif cls == PERSON:
            x, y = _place(rng, lay, 'walk', near=0.8)
            fn = (lambda s, x, y, m: _figure(s, x, y, m, PERSON, False))
        elif cls in (RIDER, MOTORCYCLE, BICYCLE):
            x, y = _place(rng, lay, 'road', near=0.8)
            kind = cls if cls != RIDER else (
                BICYCLE if rng.random() < 0.5 else MOTORCYCLE)
            rider = cls == RIDER or rng.random() < 0.5
            fn = (lambda s, x, y, m, k=kind, r=rider: _two_wheeler(
                s, x, y, m, k, r))
        elif cls == CAR:
            x, y = _place(rng, lay, 'road', near=0.9)
            fn = _car
        elif cls == TRUCK:
            x, y = _place(rng, lay, 'road', near=0.5)
            fn = _truck
        elif cls == BUS:
            x, y = _place(rng, lay, 'road', near=0.5)
            fn = _bus
        elif cls == TRAIN:
            x, y = _place(rng, lay, 'road', near=0.25)
            fn = _train
        else:
            raise ValueError(f'class {cls} is not an object class')
        specs.append((y, lambda s, fn=fn, x=x, y=y: fn(s, x, y, lay.ppm(y))))
        if forced or cls in (TRUCK, BUS, TRAIN):
            break  # one large vehicle is plenty
    return specs


def _redraw(s: _Scene, lay: _Layout, cls: int) -> None:
    """Draw one more, nearby instance of ``cls`` on top of the scene."""
    rng = s.rng
    if cls in OPTIONAL_CLASSES and cls != TERRAIN:
        for _, draw in _object_specs(rng, cls, lay, forced=True):
            draw(s)
        return
    x, y = _place(rng, lay, 'walk', near=0.5)
    m = lay.ppm(y)
    if cls == VEGETATION:
        _hedge(s, x, y, m)
    elif cls == TERRAIN:  # a grass verge
        s.ellipse((x, y), (3 * m, 0.5 * m),
                  _jit(rng, (140, 155, 75), 12),
                  TERRAIN,
                  noise=9,
                  blotch=6)
    elif cls == BUILDING:
        s.rect(
            x - 2 * m,
            y - 6 * m,
            x + 2 * m,
            y,
            _jit(rng, BUILDING_COLOURS[0], 10),
            BUILDING,
            noise=4)
    elif cls == SKY:  # open sky at the top edge
        s.rect(
            -1,
            -1,
            s.w + 1,
            0.03 * s.h + 1,
            _jit(rng, (110, 150, 210)),
            SKY,
            noise=2)
    elif cls in (ROAD, SIDEWALK):
        colour = (82, 76, 88) if cls == ROAD else (188, 175, 182)
        s.ellipse((x, y), (2 * m, 0.4 * m), _jit(rng, colour, 6), cls, noise=5)


def render_scene(
    rng: np.random.Generator, image_size: Size,
    forced: Sequence[int] = ()) -> Tuple[np.ndarray, np.ndarray]:
    """Render one street scene.

    Args:
        rng (np.random.Generator): Source of randomness.
        image_size (tuple[int, int]): ``(width, height)``.
        forced (Sequence[int]): Train ids that must be visible.

    Returns:
        tuple[np.ndarray, np.ndarray]: BGR uint8 image and uint8 train-id
        label map.
    """
    width, height = image_size
    s = _Scene(rng, width, height)
    lay = _Layout(rng, width, height)
    chosen = {c for c in OPTIONAL_CLASSES if rng.random() < OPTIONAL_PROB[c]}
    chosen |= set(forced) & set(OPTIONAL_CLASSES)

    _sky(s, lay)
    _buildings(s, lay)
    _ground(s, lay, TERRAIN in chosen)

    specs = []
    # Vegetation is always present: trees along the street, some hedges.
    for _ in range(int(rng.integers(1, 5))):
        x, y = _place(rng, lay, 'walk', near=0.4)
        fn = _tree if rng.random() < 0.7 else _hedge
        specs.append((y, lambda s, fn=fn, x=x, y=y: fn(s, x, y, lay.ppm(y))))
    for cls in sorted(chosen - {TERRAIN}):
        specs += _object_specs(rng, cls, lay, forced=False)
    for _, draw in sorted(specs, key=lambda sp: sp[0]):
        draw(s)

    if rng.random() < 0.4:
        _ego_vehicle(s)
    # Anything forced but hidden behind nearer objects (or placed out of
    # view) is drawn again in front, so every split surely has all classes.
    # Large things first so they cannot hide the small ones drawn later.
    for _ in range(30):
        missing = [
            c for c in REDRAW_ORDER if c in forced and not np.any(s.lbl == c)
        ]
        if not missing:
            break
        for cls in missing:
            _redraw(s, lay, cls)
    # Camera finish: blur, sensor noise, exposure.
    img = cv2.GaussianBlur(s.img, (3, 3), rng.uniform(0.3, 0.7))
    img += rng.normal(0, rng.uniform(1.5, 3.5), img.shape)
    img *= rng.uniform(0.8, 1.15)  # exposure
    img = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR), s.lbl


def _forced_classes(index: int, total: int) -> List[int]:
    """Classes image ``index`` of a split of ``total`` must show; round
    robin, so any split with at least one image covers all 19."""
    return [c for c in range(19) if c % total == index % total]


def _label_ids(train_ids: np.ndarray) -> np.ndarray:
    lut = np.full(256, EGO_VEHICLE_ID, np.uint8)
    lut[:len(LABEL_IDS)] = LABEL_IDS
    return lut[train_ids]


def cityscapes_owned_paths() -> List[str]:
    """Paths (relative to the dataset root) the generator writes."""
    return [
        osp.join(top, split) for top in ('leftImg8bit', 'gtFine')
        for split in ('train', 'val')
    ]


def cityscapes_params(num_train: int, num_val: int, image_size: Size,
                      seed: int, write_label_ids: bool) -> dict:
    """The parameters recorded in (and compared with) the manifest."""
    return dict(
        num_train=int(num_train),
        num_val=int(num_val),
        image_size=[int(image_size[0]), int(image_size[1])],
        seed=int(seed),
        write_label_ids=bool(write_label_ids))


def _generate_split(journal: OutputJournal, split: str, num: int,
                    image_size: Size, seed: int, write_label_ids: bool,
                    progress: Optional[ProgressFn]) -> List[str]:
    written, seen = [], np.zeros(256, bool)
    cities = CITIES[split]
    for i in range(num):
        rng = np.random.default_rng(split_seed(seed, SPLIT_CODES[split], i))
        img, lbl = render_scene(rng, image_size, _forced_classes(i, num))
        seen[np.unique(lbl)] = True
        city = cities[i % len(cities)]
        stem = f'{city}_{i // len(cities):06d}_{19:06d}'
        img_dir = osp.join('leftImg8bit', split, city)
        ann_dir = osp.join('gtFine', split, city)
        files = {
            osp.join(img_dir, f'{stem}_leftImg8bit.png'): img,
            osp.join(ann_dir, f'{stem}_gtFine_labelTrainIds.png'): lbl
        }
        if write_label_ids:
            files[osp.join(ann_dir, f'{stem}_gtFine_labelIds.png')] = \
                _label_ids(lbl)
        for rel, arr in files.items():
            cv2.imwrite(
                journal.path(rel), arr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
            written.append(rel)
        if progress is not None:
            progress(split, i + 1, num)
    missing = [CITYSCAPES_CLASSES[c] for c in range(19) if not seen[c]]
    if num and missing:  # a bug, not bad luck: classes are forced
        raise RuntimeError(f'{split} split misses classes {missing}')
    return written


def generate_cityscapes(
        out_dir: str,
        num_train: int = 100,
        num_val: int = 20,
        image_size: Size = (256, 128),
        seed: int = 0,
        write_label_ids: bool = True,
        overwrite: bool = False,
        progress: Optional[ProgressFn] = None) -> Dict[str, str]:
    """Generate a synthetic Cityscapes-style segmentation dataset.

    The same arguments always give byte-identical files. Each split in which
    at least one image is generated contains all 19 classes.

    Args:
        out_dir (str): Dataset root (``data_root`` in mmseg configs).
        num_train (int): Images in the train split. Defaults to 100.
        num_val (int): Images in the val split. Defaults to 20.
        image_size (tuple[int, int]): ``(width, height)``. Defaults to
            (256, 128), Cityscapes' 2:1 aspect ratio.
        seed (int): Random seed. Defaults to 0.
        write_label_ids (bool): Also write ``*_gtFine_labelIds.png`` with
            Cityscapes label ids. Defaults to True.
        overwrite (bool): Delete files a previous generation left in
            ``out_dir`` instead of raising. Defaults to False.
        progress (Callable, optional): Called as
            ``progress(split, done, total)`` after every image.

    Returns:
        dict[str, str]: Paths of ``data_root``, ``train_img_dir``,
        ``train_ann_dir``, ``val_img_dir``, ``val_ann_dir`` and
        ``manifest``.
    """
    check_counts(seed, num_train=num_train, num_val=num_val)
    if image_size[0] < 64 or image_size[1] < 32:
        raise ValueError(f'image_size {image_size} is too small (min 64x32)')
    params = cityscapes_params(num_train, num_val, image_size, seed,
                               write_label_ids)
    journal = prepare_output(out_dir, cityscapes_owned_paths(), overwrite)
    paths = dict(data_root=out_dir)
    written = []
    for split, num in (('train', num_train), ('val', num_val)):
        written += _generate_split(journal, split, num, tuple(image_size),
                                   seed, write_label_ids, progress)
        paths[f'{split}_img_dir'] = osp.join(out_dir, 'leftImg8bit', split)
        paths[f'{split}_ann_dir'] = osp.join(out_dir, 'gtFine', split)
    paths['manifest'] = write_manifest(out_dir, GENERATOR_NAME, params,
                                       written)
    return paths
