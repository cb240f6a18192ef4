# Copyright (c) mmadc contributors. All rights reserved.
import subprocess
import sys

import mmcv
import mmengine
import mmpose
import mmseg
import numpy
import pytest
import torch
import torchvision

from mmadc.utils.collect_env import collect_env


def test_collect_env_reports_the_stack():
    env = collect_env()
    assert env['PyTorch'] == torch.__version__
    assert env['TorchVision'] == torchvision.__version__
    assert env['MMEngine'] == mmengine.__version__
    assert env['MMCV'] == mmcv.__version__
    assert env['MMPose'] == mmpose.__version__
    assert env['MMSegmentation'] == mmseg.__version__
    assert env['NumPy'] == numpy.__version__
    assert env['CUDA available'] == torch.cuda.is_available()
    assert 'Python' in env and 'MMDetection' in env


def test_mmcv_compiled_ops_available():
    # The project's install builds full mmcv; DCN and PSAMask must load.
    assert collect_env()['MMCV compiled ops'] == 'available'


def test_collect_env_reports_adc_kernel():
    from mmadc.ops.native_cpu import native_cpu_available
    status = collect_env()['mmadc ADC CPU kernel']
    assert status.startswith(
        'available' if native_cpu_available() else 'not built')


def test_collect_env_module_runs():
    out = subprocess.run([sys.executable, '-m', 'mmadc.utils.collect_env'],
                         capture_output=True,
                         text=True,
                         check=True).stdout
    assert f'PyTorch: {torch.__version__}' in out
    assert 'MMCV compiled ops: available' in out


def test_collect_env_names_the_gemm_library_in_use():
    """The report names where float32 GEMMs go now, not merely whether
    oneDNN is there."""
    from mmadc.ops import native_cpu
    if not native_cpu.native_cpu_available():
        pytest.skip('native CPU kernel not built')
    libraries = {'mm': 'at::mm'}
    if native_cpu._adc_cpu.has_onednn():
        libraries['onednn'] = 'oneDNN'
    for name, library in libraries.items():
        with native_cpu.gemm_library(name):
            status = collect_env()['mmadc ADC CPU kernel']
        assert status == f'available (float32 GEMMs: {library})'
