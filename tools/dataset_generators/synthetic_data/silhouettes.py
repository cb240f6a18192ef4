# Copyright (c) mmadc contributors. All rights reserved.
"""Traffic participants of the street scenes, described as tables of shapes.

A silhouette is a sequence of :class:`Shape` s in metres, relative to the
point where the object touches the ground (x to the right, y down), and
:func:`paint_silhouette` draws one at any place and scale. Which table is
drawn, and in which colours, is decided by the scene.
"""
from typing import Callable, Dict, NamedTuple, Sequence, Tuple, Union

import numpy as np

Colour = Union[str, Sequence[float]]
#: Colours by name: RGB, or a function drawing one (see paint_silhouette).
Palette = Dict[str, Union[Sequence[float], Callable[[], Sequence[float]]]]


class Shape(NamedTuple):
    """One part of a silhouette.

    ``geometry`` by ``kind`` (points as ``(x, y)`` pairs, every length in
    metres): ``'rect'`` ``(x0, y0, x1, y1)``; ``'poly'`` ``(point, ...)``;
    ``'line'`` ``(point, point, width)``; ``'circle'`` ``(centre, radius)``
    or ``(centre, radius, ring_width)`` for a ring; ``'ellipse'``
    ``(centre, (semi_x, semi_y), (start_deg, end_deg))``. ``colour`` is
    RGB or the name of a colour of the palette the painter is given.
    """
    kind: str
    geometry: tuple
    colour: Colour
    noise: float = 4.0
    blotch: float = 0.0


TYRE, HUB = (22, 22, 24), (120, 120, 125)
BICYCLE_TYRE = (25, 25, 25)
TAIL_LIGHT, PANTOGRAPH, FORK = (200, 20, 20), (40, 40, 40), (30, 30, 30)


def wheel(x: float, y: float, radius: float) -> Tuple[Shape, Shape]:
    return (Shape('circle', ((x, y), radius), TYRE, noise=2),
            Shape('circle', ((x, y), radius * 0.45), HUB, noise=2))


CAR_SIDE = (
    Shape('rect', (-2.1, -0.855, 2.1, -0.15), 'body', noise=3),
    Shape(
        'poly',
        ((-1.26, -0.825), (-0.735, -1.5), (0.735, -1.5), (1.47, -0.825)),
        'body',
        noise=3),
    Shape(
        'poly', ((-1.05, -0.9), (-0.63, -1.38), (0.63, -1.38), (1.26, -0.9)),
        'glass',
        noise=3),
    *wheel(-1.365, -0.35, 0.35),
    *wheel(1.365, -0.35, 0.35),
)
CAR_REAR = (
    Shape('rect', (-0.9, -0.9, 0.9, -0.1), 'body', noise=3),
    Shape(
        'poly', ((-0.855, -0.9), (-0.63, -1.5), (0.63, -1.5), (0.855, -0.9)),
        'body',
        noise=3),
    Shape('rect', (-0.585, -1.425, 0.585, -0.975), 'glass', noise=3),
    Shape('rect', (-0.81, -0.75, -0.54, -0.6), TAIL_LIGHT, noise=2),
    Shape('rect', (-0.81, -0.2, -0.495, 0.0), TYRE, noise=2),
    Shape('rect', (0.81, -0.75, 0.54, -0.6), TAIL_LIGHT, noise=2),
    Shape('rect', (0.81, -0.2, 0.495, 0.0), TYRE, noise=2),
)


def box_vehicle(kind: str, length: float, height: float,
                side_view: bool) -> Tuple[Shape, ...]:
    """A truck, bus or train (``kind``) seen from the side or the rear.

    Args:
        kind (str): ``'truck'`` (cab at the front, colour ``'cab'``),
            ``'bus'`` (a row of windows) or ``'train'`` (windows, a band
            of colour ``'band'`` and a pantograph).
        length (float): Length in metres (a side view's width).
        height (float): Height in metres.
        side_view (bool): Whether seen from the side.
    """
    half = length / 2 if side_view else 1.25
    top = -height
    shapes = [
        Shape('rect', (-half, top, half, -0.3), 'body', noise=3, blotch=2)
    ]
    if kind == 'truck' and side_view:
        shapes += [
            Shape('rect', (half - 2.0, top + 0.8, half, -0.3), 'cab', noise=3),
            Shape(
                'rect', (half - 1.2, top + 1.0, half - 0.2, top + 1.8),
                'glass',
                noise=2)
        ]
    elif kind == 'truck':
        shapes.append(Shape('rect', (-half, -1.0, half, -0.3), 'cab', noise=3))
    elif side_view:  # a row of windows between pillars
        x0, x1, y0, y1 = -half * 0.95, half * 0.95, top + 0.35, top + 1.4
        shapes.append(Shape('rect', (x0, y0, x1, y1), 'glass', noise=2))
        shapes += [
            Shape('line', ((x, y0), (x, y1), 0.15), 'body', noise=2)
            for x in np.arange(x0, x1, 1.6)
        ]
    else:
        shapes.append(
            Shape(
                'rect', (-half * 0.85, top + 0.3, half * 0.85, top + 1.5),
                'glass',
                noise=2))
    if kind == 'train':
        shapes += [
            Shape('rect', (-half, -1.2, half, -0.8), 'band', noise=2),
            Shape('line', ((-2.0, top), (0.0, top - 0.8), 0.1), PANTOGRAPH),
            Shape('line', ((0.0, top - 0.8), (2.0, top), 0.1), PANTOGRAPH)
        ]
    if side_view:
        shapes += wheel(-half * 0.75, -0.45, 0.45)
        shapes += wheel(half * 0.75, -0.45, 0.45)
    else:
        shapes += [
            Shape(
                'rect', (side * half * 0.95, -0.35, side * half * 0.6, 0.0),
                TYRE,
                noise=2) for side in (-1, 1)
        ]
    return tuple(shapes)


def figure(seated: bool, stride: float = 0.0) -> Tuple[Shape, ...]:
    """A pedestrian (legs ``stride`` metres apart at each side) or a
    rider (seated, leaning forward, feet on the pedals, helmeted).

    Colours: ``'shirt'``, ``'trousers'``, ``'skin'`` and ``'helmet'``
    (rider) or ``'hair'`` (pedestrian).
    """
    hip_y = -0.55 if seated else -0.9
    lean = 0.35 if seated else 0.0
    hip, neck = (0.0, hip_y), (lean, hip_y - 0.65)
    feet = ((0.25, -0.3), (-0.2, -0.3)) if seated else ((-stride, 0.0),
                                                        (stride, 0.0))
    hand = (neck[0] + (0.45 if seated else 0.1), neck[1] + 0.45)
    head = (neck[0] + 0.05, neck[1] - 0.15)
    if seated:
        top_of_head = Shape(
            'ellipse', (head, (0.15, 0.13), (180, 360)), 'helmet', noise=2)
    else:
        top_of_head = Shape(
            'ellipse', (head, (0.13, 0.13), (180, 360)), 'hair', noise=2)
    legs = [Shape('line', (hip, foot, 0.18), 'trousers') for foot in feet]
    return (
        *legs,
        Shape('line', (hip, neck, 0.35), 'shirt', noise=3),
        Shape('line', (neck, hand, 0.12), 'shirt'),
        Shape('circle', (head, 0.13), 'skin', noise=2),
        top_of_head,
    )


def _bicycle(r: float) -> Tuple[Shape, ...]:
    back, front, crank = (-0.55, -r), (0.55, -r), (0.0, -r)
    seat, bar = (-0.1, -0.95), (0.4, -1.0)
    tubes = ((back, seat), (seat, crank), (crank, back), (crank, bar),
             (seat, bar), (bar, front))
    wheels = [
        Shape('circle', (c, r, 0.05), BICYCLE_TYRE) for c in (back, front)
    ]
    frame = [
        Shape('line', (p1, p2, 0.05), 'frame', noise=2) for p1, p2 in tubes
    ]
    return (*wheels, *frame)


def _motorcycle(r: float) -> Tuple[Shape, ...]:
    back, front = (-0.55, -r), (0.55, -r)
    body = ((back[0], -r * 1.3), (-0.1, -0.85), (0.45, -0.8),
            (front[0], -r * 1.2), (0.0, -r * 0.8))
    return (
        *wheel(*back, r),
        *wheel(*front, r),
        Shape('poly', body, 'body', noise=3),
        Shape('line', ((0.45, -0.8), (front[0], -r), 0.08), FORK),
    )


#: Colours: ``'frame'`` (bicycle), ``'body'`` (motorcycle).
BICYCLE = _bicycle(0.33)
MOTORCYCLE = _motorcycle(0.3)
#: Where a two-wheeler's rider (:func:`figure`) sits, from its ground point.
RIDER_OFFSET = (-0.05, -0.1)


def paint_silhouette(scene, x: float, y: float, m: float, cls: int,
                     shapes: Sequence[Shape], palette: Palette) -> None:
    """Draw a silhouette into a street scene.

    Args:
        scene: The scene; its ``rect``/``poly``/``line``/``circle``/
            ``ellipse`` fill a shape with a textured colour and a label.
        x (float): Ground point, image x (pixels).
        y (float): Ground point, image y (pixels).
        m (float): Pixels per metre at the ground point.
        cls (int): The label of every shape.
        shapes (Sequence[Shape]): The silhouette.
        palette (dict): The colours the shapes name: RGB, or a function
            that draws one at its first use. Colours drawn at first use
            take their random numbers where the shape needing them comes
            in the random stream (after the textures before it), which
            keeps each seed's images as they are.
    """
    colours = dict(palette)

    def colour(c: Colour):
        if isinstance(c, str):
            if callable(colours[c]):
                colours[c] = colours[c]()
            return colours[c]
        return c

    def at(p):
        return (x + p[0] * m, y + p[1] * m)

    for kind, g, c, noise, blotch in shapes:
        tex = dict(noise=noise, blotch=blotch)
        if kind == 'rect':
            scene.rect(x + g[0] * m, y + g[1] * m, x + g[2] * m, y + g[3] * m,
                       colour(c), cls, **tex)
        elif kind == 'poly':
            scene.poly([at(p) for p in g], colour(c), cls, **tex)
        elif kind == 'line':
            scene.line(at(g[0]), at(g[1]), g[2] * m, colour(c), cls, **tex)
        elif kind == 'circle':
            ring = max(1, int(g[2] * m)) if len(g) > 2 else -1
            scene.circle(
                at(g[0]), g[1] * m, colour(c), cls, thickness=ring, **tex)
        elif kind == 'ellipse':
            scene.ellipse(
                at(g[0]), (g[1][0] * m, g[1][1] * m),
                colour(c),
                cls,
                arc=g[2],
                **tex)
        else:
            raise ValueError(f'unknown shape kind {kind!r}')
