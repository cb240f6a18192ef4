# Copyright (c) mmadc contributors. All rights reserved.
"""Inputs and outputs of the image demos: an image or a folder of images
in, one drawn image per input out, and errors as one line.

An output file that already exists is never replaced unless the user asks
with ``--overwrite``: the demos check every output path (with
:mod:`mmadc.utils.output_path`: the extension one of the image writer's,
``--out-dir`` a folder) before the model is built, so a refused run writes
nothing.
"""
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from mmadc.utils.cli import CliError, run_cli
from mmadc.utils.output_path import (OutputPathError, check_output_dir,
                                     check_output_files)

#: Images the demos read and write (what OpenCV encodes by extension).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class DemoError(CliError, ValueError):
    """Bad input to a demo; the message is one line naming the argument or
    file and what was expected."""


def list_images(folder: str) -> List[str]:
    """The image files directly in ``folder`` (by extension), sorted."""
    names = sorted(
        n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)
        and osp.isfile(osp.join(folder, n)))
    if not names:
        raise DemoError(f'img: the folder "{folder}" holds no image '
                        f'({", ".join(IMAGE_EXTENSIONS)})')
    return [osp.join(folder, n) for n in names]


def plan_outputs(img: str,
                 out_file: Optional[str],
                 out_dir: Optional[str],
                 overwrite: bool = False,
                 suffix: Optional[str] = None,
                 make_dirs: bool = False) -> List[Tuple[str, str]]:
    """Pair every input image with its output path.

    Args:
        img (str): An image file or a folder of images.
        out_file (str, optional): The output of a single image.
        out_dir (str, optional): The folder of the outputs (required for a
            folder of images); each output keeps its input's file name.
        overwrite (bool): Replace existing output files.
        suffix (str, optional): Replace the outputs' extension (e.g.
            ``'.png'``).
        make_dirs (bool): The writer makes missing folders (as
            ``mmcv.imwrite``); else the folder of ``out_file`` must exist.

    Returns:
        list[tuple[str, str]]: ``(input, output)`` pairs.

    Raises:
        DemoError: Missing input, no or both outputs given, a folder input
            without ``out_dir``, an output that is not an image file (see
            :data:`IMAGE_EXTENSIONS`) or that is its input, ``out_dir`` a
            file, or an existing output without ``overwrite``.
    """
    if not osp.exists(img):
        raise DemoError(f'img: "{img}" does not exist')
    if (out_file is None) == (out_dir is None):
        raise DemoError('give exactly one of --out-file (one image) and '
                        '--out-dir (one output per image)')
    if osp.isdir(img):
        if out_dir is None:
            raise DemoError(f'img: "{img}" is a folder; give --out-dir '
                            'instead of --out-file')
        inputs = list_images(img)
    else:
        inputs = [img]
    if out_file is not None:
        pairs = [(img, out_file)]
    else:
        pairs = [(path, osp.join(out_dir, osp.basename(path)))
                 for path in inputs]
    if suffix is not None:
        pairs = [(i, osp.splitext(o)[0] + suffix) for i, o in pairs]
    arg = '--out-file' if out_file is not None else '--out-dir'
    try:
        if out_dir is not None:
            check_output_dir(out_dir, arg)
        check_output_files([out for _, out in pairs],
                           arg,
                           IMAGE_EXTENSIONS,
                           overwrite,
                           inputs=[(path, 'input image') for path, _ in pairs],
                           make_dirs=make_dirs)
    except OutputPathError as err:
        raise DemoError(str(err)) from None
    return pairs


def read_image(path: str) -> np.ndarray:
    """The image as a BGR ``uint8`` array (mmcv's reader), or a
    :class:`DemoError` naming the file."""
    import mmcv
    try:
        image = mmcv.imread(path)
    except Exception as err:  # cv2/pillow errors vary by format
        raise DemoError(f'img: cannot read "{path}" as an image ({err})') \
            from None
    if image is None or image.size == 0:
        raise DemoError(f'img: cannot read "{path}" as an image')
    return image


def parse_boxes(values: Optional[Sequence[str]]) -> Optional[np.ndarray]:
    """``--bboxes X1,Y1,X2,Y2 ...`` as an ``(N, 4)`` float array."""
    if not values:
        return None
    boxes = []
    for value in values:
        parts = value.split(',')
        try:
            box = [float(p) for p in parts]
        except ValueError:
            box = []
        if len(box) != 4 or not all(np.isfinite(box)):
            raise DemoError(f'--bboxes: "{value}" is not X1,Y1,X2,Y2 '
                            '(four numbers)')
        if box[2] <= box[0] or box[3] <= box[1]:
            raise DemoError(f'--bboxes: "{value}" is empty (need X2 > X1 '
                            'and Y2 > Y1)')
        boxes.append(box)
    return np.asarray(boxes, dtype=np.float32)


def check_boxes_inside(boxes: np.ndarray, image: np.ndarray,
                       path: str) -> None:
    """Raise unless every box overlaps the image (a box partly outside is
    clipped by the model's affine crop, a box wholly outside has nothing
    to look at)."""
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in boxes:
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise DemoError(
                f'box {x1:g},{y1:g},{x2:g},{y2:g} lies outside the image '
                f'"{path}" ({width}x{height})')


def run_cli_main(main: Callable[[], object]) -> None:
    """Run a tool's ``main`` as :func:`mmadc.utils.cli.run_cli` does (bad
    input ends it with one line on stderr and exit status 1, not a
    traceback), also for a ``FileNotFoundError``, with which
    :mod:`mmadc.analysis` reports a missing input file."""
    run_cli(main, expected=(FileNotFoundError, ))


def load_detections(path: str, score_thr: float = 0.0) -> dict:
    """Person boxes of a COCO detection results file (what mmpose's
    ``bbox_file`` takes: a list of ``image_id``, ``category_id``, ``bbox``
    in ``x, y, w, h`` and ``score``), category 1 (person) only.

    Args:
        path (str): The JSON file.
        score_thr (float): Keep boxes scoring at least this.

    Returns:
        dict[int, np.ndarray]: Image id to ``(N, 4)`` boxes, ``x1, y1, x2,
        y2``.
    """
    import json
    if not osp.isfile(path):
        raise DemoError(f'--det-file: "{path}" does not exist')
    try:
        with open(path, encoding='utf-8') as f:
            records = json.load(f)
        boxes: dict = {}
        for rec in records:
            if rec.get('category_id', 1) != 1 or \
                    rec.get('score', 1.0) < score_thr:
                continue
            x, y, w, h = (float(v) for v in rec['bbox'])
            boxes.setdefault(int(rec['image_id']),
                             []).append([x, y, x + w, y + h])
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise DemoError(
            f'--det-file: "{path}" is not a COCO detection results file (a '
            'JSON list of image_id, category_id, bbox [x, y, w, h], score):'
            f' {type(err).__name__}: {err}') from None
    return {k: np.asarray(v, dtype=np.float32) for k, v in boxes.items()}


def image_id_of(path: str) -> int:
    """COCO's image id of an image file: its name's number
    (``000000397133.jpg`` -> 397133)."""
    stem = osp.splitext(osp.basename(path))[0]
    if not stem.isdigit():
        raise DemoError(
            f'--det-file: cannot match "{path}" to the detections: COCO '
            'image files are named by their image id (000000397133.jpg)')
    return int(stem)
