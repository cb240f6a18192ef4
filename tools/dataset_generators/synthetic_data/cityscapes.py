# Copyright (c) mmadc contributors. All rights reserved.
"""The synthetic Cityscapes-style segmentation data set.

Cityscapes cannot be downloaded here, so this module writes street scenes
painted by :mod:`.cityscapes_scene` in the folder layout mmseg's
``CityscapesDataset`` reads unchanged::

    out_dir/
    ├── leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png
    ├── gtFine/{train,val}/<city>/<stem>_gtFine_labelTrainIds.png
    │                             (and <stem>_gtFine_labelIds.png)
    └── synthetic_manifest.json

where ``<stem>`` is ``<city>_<seq>_<frame>``, e.g. ``aachen_000003_000019``.
Every class is guaranteed to occur in each split.
"""
import os.path as osp
from typing import Dict, List, Optional

import cv2
import numpy as np

from .canvas import Size
from .cityscapes_scene import CITYSCAPES_CLASSES, render_scene
from .output import (OutputJournal, ProgressFn, check_counts, prepare_output,
                     split_seed, write_manifest)

GENERATOR_NAME = 'synthetic_cityscapes'

# Cityscapes label ids of the train ids (for *_gtFine_labelIds.png); the
# ignore region is the ego vehicle, whose label id is 1.
LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31,
             32, 33)
EGO_VEHICLE_ID = 1
CITIES = {
    'train': ('aachen', 'bremen', 'zurich'),
    'val': ('frankfurt', 'lindau', 'munster')
}
SPLIT_CODES = {'train': 0, 'val': 1}


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
