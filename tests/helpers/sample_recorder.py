# Copyright (c) mmadc contributors. All rights reserved.
"""Test-only hook: records which samples each rank trained on.

Enabled by a test config with ``custom_imports=dict(imports=['mmadc',
'sample_recorder'])`` and ``tests/helpers`` on ``PYTHONPATH``.
"""
import json
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SampleRecorderHook(Hook):
    """Write ``samples_rank{rank}.json``: (img_id, instance id) per sample."""

    def before_train(self, runner) -> None:
        self.samples = []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        for sample in data_batch['data_samples']:
            meta = sample.metainfo
            self.samples.append([meta['img_id'], meta.get('id')])

    def after_train(self, runner) -> None:
        path = osp.join(runner.work_dir, f'samples_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(self.samples, f)
