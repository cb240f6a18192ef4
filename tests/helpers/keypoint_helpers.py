# Copyright (c) mmadc contributors. All rights reserved.
"""A hand-placed COCO person for the keypoint error tests."""
import numpy as np

#: COCO's left and right shoulder indices
L_SHO, R_SHO = 5, 6


def person_xy(shift_x: float = 0.) -> np.ndarray:
    """Left keypoints at x = 100, right ones at x = 160, the nose at 130;
    pair p at y = 40 + 25 p; everything moved by ``shift_x``."""
    xy = np.zeros((17, 2))
    for j in range(17):
        xy[j, 0] = 130 if j == 0 else (100 if j % 2 else 160)
        xy[j, 1] = 40 + 25 * ((j + 1) // 2)
    xy[:, 0] += shift_x
    return xy
