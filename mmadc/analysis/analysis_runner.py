# Copyright (c) mmadc contributors. All rights reserved.
"""An MMEngine Runner that runs an ADC analysis metric over a config's
val or test split.

The analysis tools change only what the analysis needs (the evaluator,
the boxes the persons are cropped with, one forward per sample, samples
counted once) and leave the rest of the config, e.g. its dataset,
pipeline, data loader and device settings, as they are.
"""
import copy
import json
import os.path as osp
import re
import warnings
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from mmadc.engine.independent_runner import build_independent_runner
from mmadc.models.utils import find_adc_layers, require_adc_layers
from mmadc.utils.checkpoint_file import check_checkpoint_file

#: Which persons a top-down pose analysis runs over: the ground-truth
#: boxes (every annotated person, with its annotation) or the detection
#: file the config names (the persons the paper's COCO results are on).
BOX_SOURCES = ('det', 'gt')


def load_analysis_config(config: str,
                         cfg_options: Optional[dict] = None) -> Config:
    """Load a config for an analysis tool.

    Args:
        config (str): Config file path.
        cfg_options (dict, optional): Overrides (``--cfg-options``).

    Returns:
        Config: The config.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config: "{config}" does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _test_dataloader(cfg: Config, split: str, num_samples: Optional[int],
                     boxes: Optional[str]) -> dict:
    key = f'{split}_dataloader'
    if split not in ('val', 'test') or cfg.get(key) is None:
        raise ValueError(f'split: the config has no {key} (use val or test)')
    loader_cfg = copy.deepcopy(cfg[key])
    dataset = loader_cfg.dataset
    if boxes not in (None, ) + BOX_SOURCES:
        raise ValueError(f'boxes must be one of {BOX_SOURCES}, got '
                         f'{boxes!r}')
    if boxes == 'gt' and 'bbox_file' in dataset:
        dataset.bbox_file = None
    if boxes == 'det' and not dataset.get('bbox_file'):
        raise ValueError(
            f'boxes: the dataset of {key} names no detection file '
            '(bbox_file) to take the persons from; use ground-truth boxes '
            "('gt') or set bbox_file")
    if num_samples is not None:
        if num_samples < 1:
            raise ValueError(f'the number of samples must be >= 1, got '
                             f'{num_samples}')
        dataset.indices = int(num_samples)
    sampler = loader_cfg.get('sampler')
    if isinstance(sampler,
                  dict) and sampler.get('type') in ('DefaultSampler',
                                                    'mmengine.DefaultSampler'):
        # statistics count every sample once: no padding repeats
        sampler['round_up'] = False
    if not loader_cfg.get('num_workers'):
        loader_cfg.persistent_workers = False
        # Serialising only shares memory between workers; MMEngine's fails
        # on an empty dataset with "need at least one array to concatenate"
        # instead of the check in build_analysis_runner.
        dataset.serialize_data = False
    return loader_cfg


def build_analysis_runner(cfg: Config,
                          metric: dict,
                          work_dir: str,
                          checkpoint: Optional[str] = None,
                          split: str = 'val',
                          num_samples: Optional[int] = None,
                          boxes: Optional[str] = None,
                          device: Optional[str] = None,
                          source: str = 'the config') -> Runner:
    """A Runner whose ``test()`` runs ``metric`` over a split of a config.

    The split's data loader becomes the test data loader, ``metric`` the
    test evaluator, and :class:`~mmadc.engine.ADCRateRecordHook` is added
    to the custom hooks. Pose models run without flip test, so each person
    is one forward and the rates are those of the unflipped crop. The
    checkpoint is loaded here (a warning names ADC layers it has no rate
    regressor for); without one the model keeps its construction-time
    weights, where every ADC rate is exactly 1.

    Args:
        cfg (Config): The config.
        metric (dict): The test evaluator's metric config.
        work_dir (str): The Runner's work directory: its log and the config
            it ran (``<timestamp>/`` and ``<timestamp>.py``) go there.
        checkpoint (str, optional): Checkpoint file.
        split (str): ``'val'`` or ``'test'``.
        num_samples (int, optional): Use only the first N samples
            (``indices`` of the dataset).
        boxes (str, optional): For top-down pose datasets, ``'gt'`` crops
            the ground-truth persons (``bbox_file=None``), ``'det'`` the
            detections of the config's ``bbox_file``; None keeps the
            dataset as configured.
        device (str, optional): Device to run on (default: MMEngine's
            choice, the GPU if there is one).
        source (str): What the config came from, for messages.

    Returns:
        Runner: The Runner, its test loop built and the checkpoint loaded.
    """
    if checkpoint is not None:
        check_checkpoint_file(checkpoint)
    cfg = copy.deepcopy(cfg)
    model_cfg = cfg.model
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg.backbone.init_cfg = None  # the checkpoint has weights
    test_cfg = model_cfg.get('test_cfg')
    if isinstance(test_cfg, dict) and 'flip_test' in test_cfg:
        test_cfg['flip_test'] = False
    cfg.test_dataloader = _test_dataloader(cfg, split, num_samples, boxes)
    cfg.test_evaluator = metric
    cfg.test_cfg = cfg.get('test_cfg') or dict(type='TestLoop')
    cfg.custom_hooks = list(cfg.get('custom_hooks')
                            or []) + [dict(type='ADCRateRecordHook')]
    cfg.work_dir = work_dir
    cfg.load_from = None
    cfg.resume = False
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator'):
        cfg[key] = None  # a test run builds none of them
    # Without a file name the Runner dumps the config it ran as
    # <timestamp>.py: under the config's own name it would overwrite the
    # user's config when the output directory is the config's folder. Its
    # own experiment name keeps it apart from an analysis that ran in the
    # same second (see mmadc.engine.independent_runner).
    runner = build_independent_runner(Config(cfg.to_dict()))
    require_adc_layers(runner.model, source)
    if device is not None:
        runner.model.to(device)
    loader = cfg.test_dataloader
    ann = osp.join(
        loader.dataset.get('data_root', ''),
        loader.dataset.get('ann_file', ''))
    try:
        dataset = runner.test_loop.dataloader.dataset
    except json.JSONDecodeError as err:  # upstream loaders do not name it
        raise ValueError(f'{split}_dataloader: the annotation file {ann} '
                         f'is not valid JSON (truncated?): {err}') from None
    if len(dataset) == 0:
        raise ValueError(
            f'{split}_dataloader: the dataset '
            f'({ann or loader.dataset.get("type")}) has no usable sample '
            '(no image with an annotated person or label); check the '
            'annotation file and the data root')
    if checkpoint is not None:
        ckpt = runner.load_checkpoint(checkpoint, map_location='cpu')
        _warn_missing_regressors(runner.model, ckpt, checkpoint)
    return runner


def _warn_missing_regressors(model, ckpt: dict, checkpoint: str) -> None:
    """Warn when a checkpoint lacks ADC rate regressors (e.g. a plain
    ResNet checkpoint): those layers keep their initial rates of 1."""
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    keys = {re.sub(r'^module\.', '', k) for k in state}
    missing = [
        name for name in find_adc_layers(model)
        if f'{name}.rate_regressor.fc2.bias' not in keys
    ]
    if missing:
        warnings.warn(
            f'checkpoint "{checkpoint}" has no rate regressor weights for '
            f'{len(missing)} ADC layers (e.g. {missing[0]}): their rates '
            'stay at the initial value 1')


def run_analysis_metric(runner: Runner):
    """Run the Runner's test loop; return its (only) metric object, whose
    report the main process holds afterwards."""
    runner.test()
    return runner.test_loop.evaluator.metrics[0]
