# Copyright (c) mmadc contributors. All rights reserved.
"""Street scenes painted together with their Cityscapes labels.

Simple street scenes (sky, facades, a road in perspective, sidewalks,
vegetation, street furniture and traffic participants) with pixel-exact
labels: the 19 Cityscapes train ids (0 road ... 18 bicycle); 255 (ignore)
marks only the ego-vehicle bonnet some images show at the bottom. Each class
has its own colour range, texture and shape, so a small FCN learns them.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from . import silhouettes
from .canvas import Canvas, Size
from .silhouettes import paint_silhouette
from .upsample import upsample_linear

CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                      'traffic light', 'traffic sign', 'vegetation', 'terrain',
                      'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                      'motorcycle', 'bicycle')
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN,
 SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)
IGNORE = 255

# Drawn (almost) always / drawn with a probability; a class can also be
# forced into an image (see render_scene).
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

# Colours are RGB; the image is converted to BGR only when written.
CAR_COLOURS = ((170, 25, 25), (25, 45, 140), (185, 185, 190), (30, 30, 35),
               (225, 225, 225), (55, 95, 60), (115, 115, 125))
BUILDING_COLOURS = ((125, 115, 105), (150, 132, 112), (172, 164, 150),
                    (112, 92, 80), (145, 70, 55), (95, 98, 108))
BUS_COLOURS = ((230, 190, 25), (200, 35, 30), (35, 95, 170))
SKIN = ((240, 205, 180), (220, 170, 130), (180, 130, 95), (110, 75, 55))


def _jit(rng: np.random.Generator,
         colour: Sequence[int],
         amount: float = 12) -> np.ndarray:
    """Colour with a little random variation."""
    return np.clip(
        np.asarray(colour, np.float32) + rng.normal(0, amount, 3), 0, 255)


class _Scene:
    """An RGB float image and its train-id label map, painted together.

    Each shape is rasterised once into a mask, which is then filled with a
    textured colour and labelled with its class.
    """

    def __init__(self, rng: np.random.Generator, width: int, height: int):
        self.rng = rng
        self.w, self.h = width, height
        self.img = np.zeros((height, width, 3), np.float32)
        self.lbl = np.full((height, width), IGNORE, np.uint8)

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
            tex += upsample_linear(cells.astype(np.float32), (bw, bh))
        sub = mask[y0:y1, x0:x1]
        self.img[y0:y1, x0:x1][sub] = tex[sub]
        self.lbl[y0:y1, x0:x1][sub] = cls

    def fill(self, draw: Callable[[Canvas], None], colour: Sequence[float],
             cls: int, **tex) -> None:
        """Paint the shape ``draw`` puts on a blank mask canvas."""
        shape = Canvas(np.zeros((self.h, self.w), np.uint8), antialiased=False)
        draw(shape)
        self.paint(shape.array > 0, colour, cls, **tex)

    def poly(self, pts, colour, cls, **tex) -> None:
        self.fill(lambda c: c.polygon(pts, 1), colour, cls, **tex)

    def rect(self, x0, y0, x1, y1, colour, cls, **tex) -> None:
        self.fill(lambda c: c.rect(x0, y0, x1, y1, 1), colour, cls, **tex)

    def circle(self,
               centre,
               r,
               colour,
               cls,
               thickness: int = -1,
               **tex) -> None:
        self.fill(lambda c: c.circle(centre, r, 1, thickness), colour, cls,
                  **tex)

    def line(self, p1, p2, t, colour, cls, **tex) -> None:
        self.fill(lambda c: c.line(p1, p2, t, 1), colour, cls, **tex)

    def ellipse(self, centre, axes, colour, cls, arc=(0, 360), **tex) -> None:
        self.fill(lambda c: c.ellipse(centre, axes, 1, arc=arc), colour, cls,
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


def _random_rgb(rng: np.random.Generator, low: int,
                high: int) -> Tuple[int, int, int]:
    return tuple(rng.integers(low, high) for _ in range(3))


def _car(s: _Scene, x, y, m) -> None:
    rng = s.rng
    body = _jit(rng, CAR_COLOURS[rng.integers(len(CAR_COLOURS))], 10)
    glass = _jit(rng, (50, 60, 75), 6)
    shapes = silhouettes.CAR_SIDE if rng.random() < 0.5 else \
        silhouettes.CAR_REAR
    paint_silhouette(s, x, y, m, CAR, shapes, dict(body=body, glass=glass))


def _box_vehicle(s: _Scene, x, y, m, cls: int, length: float, height: float,
                 colour) -> None:
    """Side or rear view of a truck, bus or train."""
    rng = s.rng
    glass = _jit(rng, (45, 55, 70), 6)
    side_view = cls == TRAIN or rng.random() < 0.6
    kind = {TRUCK: 'truck', BUS: 'bus', TRAIN: 'train'}[cls]
    palette = dict(
        body=colour,
        glass=glass,
        cab=lambda: _jit(rng, _random_rgb(rng, 40, 220), 5),
        band=lambda: _jit(rng, (200, 25, 25), 8))
    paint_silhouette(s, x, y, m, cls,
                     silhouettes.box_vehicle(kind, length, height, side_view),
                     palette)


def _truck(s: _Scene, x, y, m) -> None:
    colour = _jit(s.rng, (225, 225, 220), 12)
    _box_vehicle(s, x, y, m, TRUCK, 7.5, 3.3, colour)


def _bus(s: _Scene, x, y, m) -> None:
    colour = _jit(s.rng, BUS_COLOURS[s.rng.integers(len(BUS_COLOURS))], 8)
    _box_vehicle(s, x, y, m, BUS, 11.0, 3.1, colour)


def _train(s: _Scene, x, y, m) -> None:
    colour = _jit(s.rng, (235, 235, 230), 6)
    _box_vehicle(s, x, y, m, TRAIN, s.rng.uniform(18, 30), 3.6, colour)


def _figure(s: _Scene, x, y, m, cls: int, seated: bool) -> None:
    """A pedestrian (standing) or a rider (seated, leaning, helmeted)."""
    rng = s.rng
    shirt = _jit(rng, _random_rgb(rng, 20, 235), 5)
    trousers = (rng.integers(20,
                             120), rng.integers(20,
                                                120), rng.integers(40, 160))
    trousers = _jit(rng, trousers, 5)
    skin = _jit(rng, SKIN[rng.integers(len(SKIN))], 6)
    palette = dict(
        shirt=shirt,
        trousers=trousers,
        skin=skin,
        helmet=lambda: _jit(rng, (230, 60, 30), 40),
        hair=lambda: _jit(rng, (50, 35, 25), 10))
    stride = 0.0 if seated else rng.uniform(0, 0.25)
    paint_silhouette(s, x, y, m, cls, silhouettes.figure(seated, stride),
                     palette)


def _two_wheeler(s: _Scene, x, y, m, cls: int, with_rider: bool) -> None:
    rng = s.rng
    if with_rider:
        dx, dy = silhouettes.RIDER_OFFSET
        _figure(s, x + dx * m, y + dy * m, m, RIDER, seated=True)
    if cls == BICYCLE:
        palette = dict(frame=_jit(rng, _random_rgb(rng, 30, 230), 5))
        shapes = silhouettes.BICYCLE
    else:
        paint = (40, 40, 45) if rng.random() < 0.6 else (190, 30, 30)
        palette = dict(body=_jit(rng, paint, 8))
        shapes = silhouettes.MOTORCYCLE
    paint_silhouette(s, x, y, m, cls, shapes, palette)


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
        rng: np.random.Generator,
        image_size: Size,
        forced: Sequence[int] = (),
) -> Tuple[np.ndarray, np.ndarray]:
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
