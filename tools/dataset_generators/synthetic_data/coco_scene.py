# Copyright (c) mmadc contributors. All rights reserved.
"""Cartoon persons in random poses, drawn with their COCO annotations.

Persons (head, torso, limbs) in random but anatomically plausible poses on
textured backgrounds, each annotated with its 17 COCO keypoints, box and
visible silhouette.

Which side is *left* follows the person, not the colours: front-facing
persons show a face and have their left limbs on the image right (when
upright), back-facing persons show hair only and the reverse. Left and right
limbs have the same colours but carry stripes of opposite handedness, a cue a
horizontal flip turns into the other side's cue. Hence the data stays
consistent under mmpose's ``RandomFlip`` augmentation and flip test.
"""
import math
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .canvas import Canvas, Size, line_width
from .upsample import upsample_linear

COCO_KEYPOINT_NAMES = ('nose', 'left_eye', 'right_eye', 'left_ear',
                       'right_ear', 'left_shoulder', 'right_shoulder',
                       'left_elbow', 'right_elbow', 'left_wrist',
                       'right_wrist', 'left_hip', 'right_hip', 'left_knee',
                       'right_knee', 'left_ankle', 'right_ankle')
# COCO keypoint indices used below.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK = 11, 12, 13, 14, 15, 16
FACE_FRONT_ONLY = (NOSE, L_EYE, R_EYE)
# (side, proximal, middle, distal joint); side +1 is the person's left.
ARMS = ((1, L_SHO, L_ELB, L_WRI), (-1, R_SHO, R_ELB, R_WRI))
LEGS = ((1, L_HIP, L_KNEE, L_ANK), (-1, R_HIP, R_KNEE, R_ANK))

# Nominal person heights (pixels, head top to ankles ~0.95x) per COCO area
# group; the silhouette area is ~0.18-0.25 x height^2, so these land in the
# small (<32^2), medium and large (>96^2) groups respectively.
HEIGHT_RANGES = {'small': (18, 62), 'medium': (84, 190), 'large': (235, 330)}
SCALE_PROBS = {'small': 0.35, 'medium': 0.4, 'large': 0.25}

SKIN_TONES = ((224, 205, 255), (189, 214, 250), (160, 190, 235),
              (125, 165, 215), (90, 135, 190), (60, 95, 140), (45, 65, 100))
HAIR_COLOURS = ((20, 20, 25), (30, 45, 70), (40, 70, 110), (90, 150, 200),
                (110, 110, 120), (20, 40, 120))


def _dir(angle: float) -> np.ndarray:
    """Unit vector ``angle`` radians from straight down towards +x."""
    return np.array([math.sin(angle), math.cos(angle)])


def _rand_colour(
    rng: np.random.Generator,
    sat: Tuple[int, int] = (60, 230),
    val: Tuple[int, int] = (60, 240)
) -> Tuple[int, int, int]:
    """A random BGR colour drawn in HSV space (OpenCV's 8-bit ranges: hue
    0-179 in steps of 2 degrees)."""
    hue, s, v = (int(rng.integers(0, 180)), int(rng.integers(*sat)),
                 int(rng.integers(*val)))
    return _hsv_to_bgr(hue, s, v)


def _hsv_to_bgr(hue: int, sat: int, val: int) -> Tuple[int, int, int]:
    """OpenCV's ``COLOR_HSV2BGR`` formula for 8-bit values, in Python floats
    with explicit rounding: OpenCV's own results differ between 4.11 (the
    last release for numpy 1) and later releases."""
    h, s, v = (hue * 2 % 360) / 60, sat / 255, val / 255
    sector = int(h)
    f = h - sector
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # (r, g, b) in each 60-degree sector of hue
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    return tuple(int(round(c * 255)) for c in reversed(rgb[sector]))


def _scaled(colour: Sequence[int], factor: float) -> Tuple[int, int, int]:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)


# ---------------------------------------------------------------------------
# Pose sampling
# ---------------------------------------------------------------------------


def _sample_body(rng: np.random.Generator, height: float) -> dict:
    """Sample a person in its own frame: pelvis at the origin, y down, front
    view (the person's left is +x when upright).

    Returns:
        dict: ``kpts`` (17, 2) joint positions, extra drawing points
        (``neck``, ``head``, ``torso`` polygon), head geometry and limb
        thicknesses, all in pixels.
    """
    # Per-person proportions vary a little (build, age).
    p = lambda v: v * height * rng.uniform(0.9, 1.1)  # noqa: E731
    lean = float(np.clip(rng.normal(0, 0.12), -0.4, 0.4))
    down = _dir(lean)
    up, left = -down, _dir(lean + math.pi / 2)

    pelvis = np.zeros(2)
    neck = pelvis + p(0.30) * up
    sho_w, hip_w = p(0.10), p(0.07)
    kpts = np.zeros((17, 2))
    kpts[L_SHO], kpts[R_SHO] = neck + sho_w * left, neck - sho_w * left
    kpts[L_HIP], kpts[R_HIP] = pelvis + hip_w * left, pelvis - hip_w * left

    # Head: tilted a little relative to the torso, small yaw moves the face.
    tilt = float(np.clip(rng.normal(0, 0.15), -0.5, 0.5))
    h_up, h_left = -_dir(lean + tilt), _dir(lean + tilt + math.pi / 2)
    head = neck + p(0.115) * h_up
    rx, ry = 0.056 * height, 0.07 * height
    yaw = rng.uniform(-0.25, 0.25) * rx
    kpts[L_EYE] = head + 0.2 * ry * h_up + (0.42 * rx + yaw) * h_left
    kpts[R_EYE] = head + 0.2 * ry * h_up + (-0.42 * rx + yaw) * h_left
    kpts[NOSE] = head - 0.12 * ry * h_up + yaw * h_left
    kpts[L_EAR] = head + 0.05 * ry * h_up + 0.97 * rx * h_left
    kpts[R_EAR] = head + 0.05 * ry * h_up - 0.97 * rx * h_left

    # Limbs: angles measured from "down" towards the person's own side, so
    # the same numbers give mirror-symmetric left/right poses.
    upper_arm, forearm = p(0.17), p(0.15)
    thigh, shin = p(0.23), p(0.22)
    for side, sho, elb, wri in ARMS:
        mode = rng.random()
        if mode < 0.5:  # hanging
            abduct = rng.uniform(-0.25, 0.6)
        elif mode < 0.8:  # raised sideways / forwards
            abduct = rng.uniform(0.6, 1.8)
        else:  # overhead
            abduct = rng.uniform(1.8, 2.9)
        flex = 2.4 * rng.random()**1.5
        fold = -1 if rng.random() < 0.6 else 1  # mostly towards the body
        a_upper = lean + side * abduct
        a_fore = a_upper + side * fold * flex
        kpts[elb] = kpts[sho] + upper_arm * _dir(a_upper)
        kpts[wri] = kpts[elb] + forearm * _dir(a_fore)
    hip_lean = 0.3 * lean
    for side, hip, knee, ank in LEGS:
        if rng.random() < 0.12:  # kick, sit, climb
            abduct = rng.uniform(0.5, 1.4)
        else:
            abduct = float(np.clip(rng.normal(0.12, 0.15), -0.3, 0.7))
        flex = rng.uniform(0.6, 2.0) if rng.random() < 0.2 else \
            rng.uniform(0, 0.6)
        fold = -1 if rng.random() < 0.5 else 1
        a_thigh = hip_lean + side * abduct
        a_shin = a_thigh + side * fold * flex
        kpts[knee] = kpts[hip] + thigh * _dir(a_thigh)
        kpts[ank] = kpts[knee] + shin * _dir(a_shin)

    # Torso outline: a little wider than the joints so they lie inside it.
    torso = np.stack([
        kpts[L_SHO] + p(0.03) * left, kpts[L_HIP] + p(0.035) * left,
        kpts[R_HIP] - p(0.035) * left, kpts[R_SHO] - p(0.03) * left
    ])
    return dict(
        kpts=kpts,
        neck=neck,
        head=head,
        head_axes=(rx, ry),
        head_up=h_up,
        torso=torso,
        arm_t=p(0.055),
        fore_t=p(0.045),
        thigh_t=p(0.078),
        shin_t=p(0.062))


def _place_body(body: dict, back_view: bool, angle: float,
                centre: np.ndarray) -> dict:
    """Mirror (back view), rotate and translate a body into the image."""
    mirror = np.diag([-1.0, 1.0]) if back_view else np.eye(2)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    mat = rot @ mirror
    # Centre the body on its own extent so ``centre`` is the box centre.
    pts = np.concatenate([body['kpts'], body['torso'], body['head'][None]])
    mid = (pts.min(0) + pts.max(0)) / 2

    def tf(p):
        return (np.asarray(p) - mid) @ mat.T + centre

    placed = dict(body)
    for key in ('kpts', 'torso', 'neck', 'head'):
        placed[key] = tf(body[key])
    placed['head_up'] = mat @ body['head_up']
    placed['back_view'] = back_view
    return placed


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------


class _Painter:
    """Draws the same shapes into the image (anti-aliased colour) and into a
    binary silhouette mask of the person."""

    def __init__(self, img: np.ndarray, mask: np.ndarray):
        self.img = Canvas(img, antialiased=True)
        self.mask = Canvas(mask, antialiased=False)

    def segment(self,
                p1,
                p2,
                thickness: float,
                colour,
                outline: Optional[Sequence[int]] = None) -> None:
        t = line_width(thickness)
        if outline is not None and t >= 3:
            self.img.line(p1, p2, t + 2, outline)
        self.img.line(p1, p2, t, colour)
        self.mask.line(p1, p2, t, 255)

    def disc(self, centre, radius: float, colour) -> None:
        self.img.circle(centre, radius, colour, min_radius=1.0)
        self.mask.circle(centre, radius, 255, min_radius=1.0)

    def polygon(self, pts: np.ndarray, colour) -> None:
        self.img.polygon(pts, colour)
        self.mask.polygon(pts, 255)

    def ellipse(self,
                centre,
                axes,
                angle_deg: float,
                colour,
                arc: Tuple[int, int] = (0, 360)) -> None:
        self.img.ellipse(centre, axes, colour, angle_deg, arc)
        self.mask.ellipse(centre, axes, 255, angle_deg, arc)

    def stripes(self, p1, p2, thickness: float, colour, hand: int) -> None:
        """Stripes across a limb, slanted 45 degrees one way or the other.

        The slant is measured in image space from the proximal joint
        towards the distal one, so a horizontal flip turns a left-handed
        limb into a right-handed one, matching mmpose's flip label swap.
        """
        t = line_width(thickness)
        if t < 5:
            return  # too thin to show a pattern
        p1, p2 = np.asarray(p1, float), np.asarray(p2, float)
        length = float(np.linalg.norm(p2 - p1))
        if length < 1:
            return
        axis = (p2 - p1) / length
        normal = np.array([-axis[1], axis[0]])
        # Slanted stripe direction with unit extent across the limb.
        slant = normal + hand * axis
        half = 0.45 * t
        spacing = max(3.0, 1.2 * t)
        for d in np.arange(spacing / 2, length - spacing / 4, spacing):
            c = p1 + d * axis
            self.img.line(c - half * slant, c + half * slant, max(1, t // 5),
                          colour)


def _outfit(rng: np.random.Generator) -> dict:
    """Random clothing; identical for both body sides on purpose."""
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    skin = _scaled(skin, rng.uniform(0.9, 1.08))
    shirt = _rand_colour(rng)
    return dict(
        skin=skin,
        hair=HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))],
        shirt=shirt,
        trousers=_rand_colour(rng, sat=(30, 200), val=(40, 200)),
        shoes=_rand_colour(rng, sat=(0, 120), val=(10, 90)),
        long_sleeves=rng.random() < 0.5,
        shorts=rng.random() < 0.25)


def _draw_person(img: np.ndarray, person: dict,
                 rng: np.random.Generator) -> np.ndarray:
    """Draw ``person`` into ``img`` and return its full silhouette mask."""
    mask = np.zeros(img.shape[:2], np.uint8)
    pen = _Painter(img, mask)
    k, o = person['kpts'], _outfit(rng)
    dark = lambda c: _scaled(c, 0.55)  # noqa: E731  outlines
    faint = lambda c: _scaled(c, 0.75)  # noqa: E731  stripes

    # Legs behind the torso, arms in front of it (arms may cross the body).
    for hand, hip, knee, ank in LEGS:
        shin_c = o['skin'] if o['shorts'] else _scaled(o['trousers'], 0.9)
        pen.segment(k[hip], k[knee], person['thigh_t'], o['trousers'],
                    dark(o['trousers']))
        pen.stripes(k[hip], k[knee], person['thigh_t'], faint(o['trousers']),
                    hand)
        pen.segment(k[knee], k[ank], person['shin_t'], shin_c, dark(shin_c))
        pen.stripes(k[knee], k[ank], person['shin_t'], faint(shin_c), hand)
        pen.disc(k[ank], 0.6 * person['shin_t'], o['shoes'])
    pen.polygon(person['torso'], o['shirt'])
    pen.segment(person['neck'], person['head'], 0.8 * person['arm_t'],
                o['skin'])

    # Head; the hair covers the upper half (front) or everything (back).
    rx, ry = person['head_axes']
    up = person['head_up']
    angle = math.degrees(math.atan2(up[0], -up[1]))
    pen.ellipse(k[L_EAR], (0.22 * rx, 0.3 * ry), angle,
                _scaled(o['skin'], 0.85))
    pen.ellipse(k[R_EAR], (0.22 * rx, 0.3 * ry), angle,
                _scaled(o['skin'], 0.85))
    pen.ellipse(person['head'], (rx, ry), angle, o['skin'])
    if person['back_view']:
        pen.ellipse(person['head'], (0.97 * rx, 0.97 * ry), angle, o['hair'])
    else:
        pen.ellipse(person['head'], (rx, ry), angle, o['hair'], arc=(180, 360))
        if rx >= 3:  # smaller faces would be a single blob
            eye_r = 0.13 * rx
            pen.disc(k[L_EYE], eye_r, (20, 20, 20))
            pen.disc(k[R_EYE], eye_r, (20, 20, 20))
            pen.disc(k[NOSE], 0.12 * rx, _scaled(o['skin'], 0.7))
        mouth = k[NOSE] - 0.35 * ry * up
        if rx >= 4:
            side = np.array([up[1], -up[0]]) * 0.3 * rx
            pen.segment(mouth - side, mouth + side, 0.1 * rx, (60, 60, 150))

    for hand, sho, elb, wri in ARMS:
        fore_c = o['shirt'] if o['long_sleeves'] else o['skin']
        pen.segment(k[sho], k[elb], person['arm_t'], o['shirt'],
                    dark(o['shirt']))
        pen.stripes(k[sho], k[elb], person['arm_t'], faint(o['shirt']), hand)
        pen.segment(k[elb], k[wri], person['fore_t'], fore_c, dark(fore_c))
        pen.stripes(k[elb], k[wri], person['fore_t'], faint(fore_c), hand)
        pen.disc(k[wri], 0.65 * person['fore_t'], o['skin'])
    return mask


def _background(rng: np.random.Generator, width: int,
                height: int) -> np.ndarray:
    """Gradient + cloudy noise + random clutter shapes."""
    c1 = np.array(_rand_colour(rng, sat=(0, 160)), np.float32)
    c2 = np.array(_rand_colour(rng, sat=(0, 160)), np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xx * math.cos(theta) + yy * math.sin(theta)
    ramp = (ramp - ramp.min()) / max(1e-6, float(np.ptp(ramp)))
    img = c1 + ramp[..., None] * (c2 - c1)
    cells = int(rng.integers(3, 12))
    clouds = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
    img += upsample_linear(clouds, (width, height)) * rng.uniform(5, 30)
    img = np.clip(img, 0, 255).astype(np.uint8)

    # drawn in place into img (outlines sharp, strokes anti-aliased)
    outlines = Canvas(img, antialiased=False)
    strokes = Canvas(img, antialiased=True)
    for _ in range(int(rng.integers(4, 16))):
        colour = _rand_colour(rng, sat=(0, 200))
        kind = rng.integers(4)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(5, max(6, min(width, height) // 2)))
        filled = -1 if rng.random() < 0.6 else int(rng.integers(1, 4))
        if kind == 0:
            x1, y1 = x + size, y + int(rng.integers(5, size + 6))
            if filled < 0:
                cv2.rectangle(img, (x, y), (x1, y1), colour, filled)
            else:  # OpenCV's thick outlines differ between releases
                corners = [(x, y), (x1, y), (x1, y1), (x, y1), (x, y)]
                for p1, p2 in zip(corners, corners[1:]):
                    outlines.line(p1, p2, filled, colour)
        elif kind == 1:
            cv2.circle(img, (x, y), size // 2, colour, filled, cv2.LINE_AA)
        elif kind == 2:
            pts = rng.integers(-size, size, (int(rng.integers(3, 7)), 2))
            cv2.fillPoly(img, [(pts + [x, y]).astype(np.int32)], colour,
                         cv2.LINE_AA)
        else:
            x2, y2 = x + rng.integers(-size, size), y + rng.integers(
                -size, size)
            strokes.line((x, y), (int(x2), int(y2)), int(rng.integers(1, 5)),
                         colour)
    # Fine grain so flat regions are not perfectly flat.
    grain = rng.normal(0, rng.uniform(2, 8), img.shape)
    return np.clip(img + grain, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Image composition and annotation
# ---------------------------------------------------------------------------


def _sample_person(rng: np.random.Generator, width: int, height: int) -> dict:
    group = rng.choice(list(SCALE_PROBS), p=list(SCALE_PROBS.values()))
    lo, hi = HEIGHT_RANGES[group]
    size = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    body = _sample_body(rng, size)
    back_view = bool(rng.random() < 0.25)
    # Mostly upright, sometimes lying, bending or upside down.
    if rng.random() < 0.85:
        angle = float(np.clip(rng.normal(0, 0.15), -0.5, 0.5))
    else:
        angle = float(rng.uniform(-math.pi, math.pi))
    centre = np.array(
        [rng.uniform(0.08, 0.92) * width,
         rng.uniform(0.1, 0.9) * height])
    return _place_body(body, back_view, angle, centre)


def _overlaps_too_much(mask: np.ndarray,
                       others: List[np.ndarray],
                       limit: float = 0.35) -> bool:
    """Reject placements hiding (or hidden by) most of another person."""
    area = np.count_nonzero(mask)
    if area == 0:
        return True
    for other in others:
        inter = np.count_nonzero(mask & other)
        if inter > limit * min(area, np.count_nonzero(other)):
            return True
    return False


def _simplify_closed(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Douglas-Peucker simplification of a closed integer polygon.

    The curve is split at its first point and the point farthest from it,
    and each half keeps the points farther than ``epsilon`` from the chord
    of their part. Distances are compared exactly (integer cross products
    against float64 products): ``cv2.approxPolyDP`` keeps other points in
    OpenCV 4.11 (the last release for numpy 1) than in later releases.
    """
    pts = points.astype(np.int64)
    n = len(pts)
    if n <= 3:
        return pts
    far = int(np.argmax(((pts - pts[0])**2).sum(1)))
    keep = {0, far}
    stack = [(0, far), (far, n)]  # index n is point 0 again
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        a, b = pts[i], pts[j % n]
        inner = pts[i + 1:j]
        ux, uy = int(b[0] - a[0]), int(b[1] - a[1])
        if ux == 0 and uy == 0:  # a degenerate chord: distance to a point
            d2 = ((inner - a)**2).sum(1).astype(np.float64)
            limit = epsilon * epsilon
        else:
            cross = (inner[:, 0] - a[0]) * uy - (inner[:, 1] - a[1]) * ux
            d2 = (cross * cross).astype(np.float64)
            limit = epsilon * epsilon * (ux * ux + uy * uy)
        k = int(np.argmax(d2))
        if d2[k] > limit:
            keep.add(i + 1 + k)
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return pts[sorted(keep)]


def _mask_polygons(mask: np.ndarray) -> List[List[float]]:
    """Outline polygons of a binary mask in COCO ``segmentation`` form."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for cnt in contours:
        cnt = _simplify_closed(cnt.reshape(-1, 2), 0.7)
        if len(cnt) >= 3:
            polys.append([float(v) for v in cnt.reshape(-1)])
    return polys


def _annotate(person: dict, full: np.ndarray, covered: np.ndarray, width: int,
              height: int) -> Optional[dict]:
    """COCO annotation (without ids) of a drawn person.

    Args:
        person (dict): The placed person.
        full (np.ndarray): Its silhouette mask.
        covered (np.ndarray): Union of the masks of persons drawn later.

    Returns:
        dict | None: None when (almost) nothing of the person is visible.
    """
    visible = (full > 0) & ~covered
    area = int(np.count_nonzero(visible))
    if area < 8:
        return None
    keypoints = []
    for i, (x, y) in enumerate(person['kpts']):
        inside = 0 <= x <= width - 1 and 0 <= y <= height - 1
        if not inside or (person['back_view'] and i in FACE_FRONT_ONLY):
            keypoints += [0, 0, 0]  # unlabelled
            continue
        hidden = covered[int(round(y)), int(round(x))]
        keypoints += [
            round(float(x), 2),
            round(float(y), 2), 1 if hidden else 2
        ]

    # Box of the visible silhouette, grown to the labelled (possibly
    # occluded) keypoints, as COCO boxes do not cut through joints.
    ys, xs = np.nonzero(visible)
    x0, y0 = float(xs.min()), float(ys.min())
    x1, y1 = float(xs.max() + 1), float(ys.max() + 1)
    kp = np.array(keypoints, float).reshape(-1, 3)
    kp = kp[kp[:, 2] > 0]
    if len(kp):
        x0, y0 = min(x0, kp[:, 0].min()), min(y0, kp[:, 1].min())
        x1 = min(float(width), max(x1, kp[:, 0].max() + 1))
        y1 = min(float(height), max(y1, kp[:, 1].max() + 1))
    polys = _mask_polygons(visible.astype(np.uint8))
    if not polys:  # a few scattered pixels: fall back to the box
        polys = [[x0, y0, x1, y0, x1, y1, x0, y1]]
    return dict(
        segmentation=polys,
        num_keypoints=int(len(kp)),
        area=float(area),
        iscrowd=0,
        keypoints=keypoints,
        bbox=[
            round(x0, 2),
            round(y0, 2),
            round(x1 - x0, 2),
            round(y1 - y0, 2)
        ],
        category_id=1)


def render_image(rng: np.random.Generator,
                 image_size: Size,
                 max_persons: int = 4) -> Tuple[np.ndarray, List[dict]]:
    """Render one synthetic image and its person annotations.

    Args:
        rng (np.random.Generator): Source of randomness.
        image_size (tuple[int, int]): ``(width, height)``.
        max_persons (int): Maximum number of persons in the image.

    Returns:
        tuple: BGR uint8 image and a list of COCO annotations without
        ``id``/``image_id`` (persons in drawing order, invisible ones
        dropped).
    """
    width, height = image_size
    img = _background(rng, width, height)
    n_wanted = int(rng.integers(1, max_persons + 1))
    persons, masks = [], []
    for _ in range(n_wanted):
        for _attempt in range(30):
            person = _sample_person(rng, width, height)
            trial = img.copy()
            mask = _draw_person(trial, person, rng)
            if not _overlaps_too_much(mask > 0, masks):
                img = trial
                persons.append(person)
                masks.append(mask > 0)
                break

    anns = []
    covered = np.zeros((height, width), bool)
    # Walk back to front so ``covered`` holds everything drawn later.
    for person, mask in reversed(list(zip(persons, masks))):
        ann = _annotate(person, mask, covered, width, height)
        if ann is not None:
            anns.append(ann)
        covered |= mask
    anns.reverse()

    # Camera-like finish: slight blur and sensor noise.
    img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 0.8))
    noise = rng.normal(0, rng.uniform(1, 4), img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return img, anns
