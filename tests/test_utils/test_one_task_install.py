# Copyright (c) mmadc contributors. All rights reserved.
"""``import mmadc`` with the codebase of one task only: a pose user without
mmsegmentation, a segmentation user without mmpose and mmdet (made
unimportable in a subprocess)."""
import subprocess
import sys

import pytest

CASES = {
    'pose only':
    dict(
        blocked=('mmseg', ),
        registry='mmpose.registry',
        present=('ResNetADC', 'HRNetADC'),
        absent='SegResNetADC',
        install='mmsegmentation'),
    'segmentation only':
    dict(
        blocked=('mmpose', 'mmdet'),
        registry='mmseg.registry',
        present=('ResNetADC', 'ResNetV1cADC'),
        absent='HRNetADC',
        install='mmpose'),
}

CODE = '''
import sys
for name in {blocked!r}:
    sys.modules[name] = None
import importlib
import mmadc, mmadc.models
registry = importlib.import_module({registry!r}).MODELS
for name in {present!r}:
    assert registry.get(name) is not None, name
from mmcv.cnn import build_conv_layer
layer = build_conv_layer(dict(type='ADC'), 4, 4, 3, padding=1)
assert type(layer).__name__ == 'AdaptiveDilatedConv2d'
try:
    getattr(mmadc.models, {absent!r})
except ImportError as err:
    print('ERROR:', err)
else:
    raise AssertionError('no error for the missing task')
loaded = [n for n in {blocked!r} if sys.modules.get(n) is not None]
assert not loaded, loaded
print('ok')
'''


@pytest.mark.parametrize('case', list(CASES))
def test_import_with_one_task(case):
    spec = CASES[case]
    proc = subprocess.run(
        [sys.executable, '-c', CODE.format(**spec)],
        capture_output=True,
        text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith('ok')
    error = [
        line for line in proc.stdout.splitlines() if line.startswith('ERROR:')
    ][0]
    assert spec['absent'] in error and spec['install'] in error
