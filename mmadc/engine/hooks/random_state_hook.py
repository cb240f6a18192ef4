# Copyright (c) mmadc contributors. All rights reserved.
"""Checkpoint the random states of training, so a resumed run is exact."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def capture_random_states() -> dict:
    """Python's, NumPy's and torch's global random states, as types that
    ``torch.load(weights_only=True)`` reads (ints, lists, tensors)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = dict(
        python=[version, list(internal), gauss],
        numpy=dict(
            name=name,
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict) -> None:
    """Set the global random states :func:`capture_random_states` took."""
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    npy = states['numpy']
    np.random.set_state((npy['name'], npy['keys'].numpy().astype(np.uint32),
                         npy['pos'], npy['has_gauss'], npy['cached_gaussian']))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


class _ContinuingIterator:
    """The data iterator of an iteration-based loop, restoring the pending
    random states before it loads the next batch to train on (the batches
    a resumed loop replays first are passed through)."""

    def __init__(self, iterator, hook: 'RandomStateHook',
                 replays: int) -> None:
        self.iterator = iterator
        self.hook = hook
        self.replays = replays

    def __iter__(self):
        return self

    def __next__(self):
        if self.replays > 0:
            self.replays -= 1
        else:
            self.hook.continue_from_checkpoint()
        return next(self.iterator)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Training continues from the random states each checkpoint records.

    MMEngine checkpoints hold no random state, so a run resumed after an
    interruption draws other augmentations (``RandomFlip``,
    ``RandomBBoxTransform``, ...) than the uninterrupted run and ends with
    other weights. This hook stores Python's, NumPy's and torch's states
    in every checkpoint (``checkpoint['random_states']``) and continues
    from them when the next batch is loaded: in the run that saved the
    checkpoint and in a run resumed from it alike, so both draw the same
    numbers. (What runs between a save and the next iteration,
    e.g. a validation, thereby no longer shifts training's random streams.)

    It covers the random numbers of the main process: data loaders with
    ``num_workers=0`` (as the demo configs have), the model and the loss.
    Worker processes seed their own states when they start.

    .. code-block:: python

        custom_hooks = _base_.custom_hooks + [dict(type='RandomStateHook')]
    """

    priority = 'VERY_LOW'  # after CheckpointHook has filled the checkpoint

    def __init__(self) -> None:
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # Every checkpoint saved before the next iteration (the epoch's,
        # then a best one after validation) records the same states.
        if self._pending is None:
            self._pending = capture_random_states()
        checkpoint['random_states'] = self._pending

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get('random_states')
        if states is None:
            runner.logger.warning(
                'RandomStateHook: the checkpoint holds no random states '
                '(saved without this hook); the resumed run draws other '
                'random numbers than the original one would have')
        self._pending = states

    def continue_from_checkpoint(self) -> None:
        """Set the states the last checkpoint recorded (once)."""
        if self._pending is not None:
            restore_random_states(self._pending)
            self._pending = None

    def before_train(self, runner) -> None:
        # The states must be set before the next batch is loaded (its
        # augmentation draws them), i.e. before the epoch's data iterator
        # starts, or, in an iteration-based loop, inside its iterator: a
        # resumed one first replays the batches it already trained on.
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):
            loop.dataloader_iterator = _ContinuingIterator(
                loop.dataloader_iterator, self, replays=runner.iter)

    def before_train_epoch(self, runner) -> None:
        if not hasattr(runner.train_loop, 'dataloader_iterator'):
            self.continue_from_checkpoint()
