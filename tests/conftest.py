# Copyright (c) mmadc contributors. All rights reserved.
import os
import os.path as osp
import subprocess
import sys
from typing import List

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(autouse=True)
def seeded_rngs():
    """Each test starts from the same random state whatever ran before it,
    so that a result never depends on the test order or on which tests a
    run selected (an unseeded initialisation once failed a CI run)."""
    import random

    import numpy as np
    import torch
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO_ROOT


@pytest.fixture(scope='session')
def data_workspace(tmp_path_factory) -> str:
    """A directory holding ``data/synthetic_coco`` and
    ``data/synthetic_cityscapes`` (small versions), so that the configs'
    relative ``data/...`` roots resolve when a run starts there."""
    from synthetic_data import generate_cityscapes, generate_coco_keypoints
    root = str(tmp_path_factory.mktemp('workspace'))
    generate_coco_keypoints(
        osp.join(root, 'data', 'synthetic_coco'),
        num_train_images=12,
        num_val_images=4,
        image_size=(160, 120),
        seed=0)
    generate_cityscapes(
        osp.join(root, 'data', 'synthetic_cityscapes'),
        num_train=4,
        num_val=2,
        image_size=(128, 64),
        seed=0)
    return root


def run_cli(args: List[str], cwd: str, timeout: int = 600):
    """Run a command like a user would, failing with its output shown."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='2')
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited {proc.returncode}\n'
                    f'--- stdout ---\n{proc.stdout[-4000:]}\n'
                    f'--- stderr ---\n{proc.stderr[-4000:]}')
    return proc


PYTHON = sys.executable


@pytest.fixture(params=['auto', 'reference'])
def adc_impl(request):
    """Run a test under both ADC implementations: ``auto`` takes the native
    CPU kernel wherever it applies (float32/float64 outside autocast, when
    built) and ``reference`` the PyTorch implementation, so each oracle test
    checks both. Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    from mmadc.ops import adc_implementation
    with adc_implementation(request.param):
        yield request.param
