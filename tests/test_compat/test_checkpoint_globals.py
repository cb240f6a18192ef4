# Copyright (c) mmadc contributors. All rights reserved.
"""``load_weights_only`` reads OpenMMLab checkpoints on every torch and
runs no code from them: torch's weights-only unpickler where torch has
``add_safe_globals`` (>= 2.4), mmadc's restricted one where it has not."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from mmadc.compat import checkpoint_globals

HAS_SAFE_GLOBALS = hasattr(torch.serialization, 'add_safe_globals')
PATHS = [
    pytest.param(
        True,
        id='add_safe_globals',
        marks=pytest.mark.skipif(
            not HAS_SAFE_GLOBALS,
            reason='torch < 2.4 has no add_safe_globals')),
    pytest.param(False, id='restricted_unpickler'),
]


@pytest.fixture(params=PATHS)
def load(request, monkeypatch):
    """``load_weights_only`` along one of its two paths."""
    monkeypatch.setattr(checkpoint_globals, '_HAS_SAFE_GLOBALS', request.param)
    return checkpoint_globals.load_weights_only


def _training_checkpoint():
    """What an mmengine training checkpoint holds beyond tensors."""
    from mmengine.logging import HistoryBuffer
    loss = HistoryBuffer()
    for value in (3.0, 2.0, 1.5):
        loss.update(value)
    return {
        'state_dict': {
            'backbone.conv.weight': torch.randn(4, 3, 3, 3)
        },
        'meta': {
            'dataset_meta': {
                'sigmas': np.linspace(0.1, 0.9, 17, dtype=np.float32),
                'colors': np.zeros((17, 3), np.uint8),
                'ids': np.arange(3, dtype=np.int64),
            },
            'best_score': np.float64(0.25),
        },
        'message_hub': {
            'log_scalars': {
                'train/loss': loss
            }
        },
    }


def test_reads_a_training_checkpoint(load, tmp_path):
    """Everything comes back as a plain unpickler returns it (the oracle)."""
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(_training_checkpoint(), path)
    got = load(path)
    expected = torch.load(path, map_location='cpu', weights_only=False)
    torch.testing.assert_close(got['state_dict'], expected['state_dict'])
    for key, value in expected['meta']['dataset_meta'].items():
        np.testing.assert_array_equal(got['meta']['dataset_meta'][key], value)
        assert got['meta']['dataset_meta'][key].dtype == value.dtype
    assert got['meta']['best_score'] == expected['meta']['best_score']
    loss = got['message_hub']['log_scalars']['train/loss']
    for a, b in zip(loss.data,
                    expected['message_hub']['log_scalars']['train/loss'].data):
        np.testing.assert_array_equal(a, b)
    assert loss.mean() == pytest.approx(6.5 / 3)


class _RunsCommand:
    """A pickle that calls a function no checkpoint needs when loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


class _WritesArrayToFile:
    """A pickle that reaches a method through ``getattr``, as
    HistoryBuffer's does, but one that writes a file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (np.ndarray.tofile, (np.zeros(1), self.marker))


@pytest.mark.parametrize('payload', [_RunsCommand, _WritesArrayToFile])
def test_runs_nothing_from_the_file(load, tmp_path, payload):
    path, marker = str(tmp_path / 'evil.pth'), str(tmp_path / 'marker')
    torch.save({'state_dict': {}, 'x': payload(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):
        load(path)
    assert not osp.exists(marker)
    # the file does act when loaded without restriction: the test is real
    torch.load(path, weights_only=False)
    assert osp.exists(marker)
