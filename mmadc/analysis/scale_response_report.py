# Copyright (c) mmadc contributors. All rights reserved.
"""The scale response of a model's ADC rates: the same samples run at
several scales (:class:`~mmadc.datasets.ScaleResolution` in the
pipeline), each ADC stage's mean rate per scale with its bootstrap
interval, and the report, its lines and its plot."""
import copy
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config

from mmadc.evaluation.functional import (BOOTSTRAP_SEED, NUM_RESAMPLES,
                                         scale_curve)
from mmadc.models.utils import adc_layer_title
from mmadc.utils.cli import CliError
from .report_files import new_figure

#: The transform inserted into the pipeline (mmadc.datasets).
SCALE_TRANSFORM = 'ScaleResolution'
#: Scales allowed on the command line: (0, MAX_SCALE].
MAX_SCALE = 8.


class ScaleResponseError(CliError, ValueError):
    """A scale-response request that cannot run; one-line message."""


def _type_name(step) -> str:
    kind = step.get('type') if isinstance(step, dict) else None
    if isinstance(kind, type):
        return kind.__name__
    return str(kind).rsplit('.', 1)[-1]


def scaled_pipeline(pipeline: Sequence[dict],
                    scale: float) -> Tuple[list, str]:
    """A copy of a test pipeline that sees its input at ``scale``.

    Top-down pose pipelines get :class:`~mmadc.datasets.ScaleResolution`
    right before ``TopdownAffine``: each person is cropped, by its scaled
    box, from the image resized by ``scale``, so the crop shows the same
    content from ``scale`` times as many pixels. Other pipelines
    (segmentation) get it right before the packing step (``Pack*``), after
    any ``Resize``: the whole model input is resized by ``scale``.

    Args:
        pipeline (Sequence[dict]): The dataset's pipeline configs.
        scale (float): The factor.

    Returns:
        tuple[list, str]: The new pipeline, and ``'topdown'`` or
        ``'whole image'`` (where the step went).

    Raises:
        ScaleResponseError: The pipeline has neither step.
    """
    pipeline = copy.deepcopy(list(pipeline))
    names = [_type_name(step) for step in pipeline]
    step = dict(type=SCALE_TRANSFORM, scale=float(scale))
    if 'TopdownAffine' in names:
        index, mode = names.index('TopdownAffine'), 'topdown'
    else:
        packs = [i for i, n in enumerate(names) if n.startswith('Pack')]
        if not packs:
            raise ScaleResponseError(
                'the test pipeline has neither a TopdownAffine nor a '
                f'Pack*Inputs step to put {SCALE_TRANSFORM} before (got '
                f'{names})')
        index, mode = packs[-1], 'whole image'
    return pipeline[:index] + [step] + pipeline[index:], mode


def scaled_config(cfg: Config, split: str, scale: float) -> Tuple[Config, str]:
    """A copy of ``cfg`` whose ``<split>_dataloader`` runs the pipeline of
    :func:`scaled_pipeline`.

    Args:
        cfg (Config): The config.
        split (str): ``'val'`` or ``'test'``.
        scale (float): The factor.

    Returns:
        tuple[Config, str]: The config and the mode of
        :func:`scaled_pipeline`.
    """
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise ScaleResponseError(
            f'split: the config has no {key} (use val or test)')
    cfg = copy.deepcopy(cfg)
    dataset = cfg[key].get('dataset')
    if not isinstance(dataset, dict) or not isinstance(
            dataset.get('pipeline'), (list, tuple)):
        raise ScaleResponseError(
            f'{key}: the dataset has no pipeline of its own to scale '
            '(wrapped datasets, e.g. ConcatDataset, are not supported)')
    dataset.pipeline, mode = scaled_pipeline(dataset.pipeline, scale)
    return cfg, mode


def paired_stage_rates(runs: Dict[float, dict]) -> Tuple[list, dict]:
    """The samples of every scale in one order.

    Args:
        runs (dict[float, dict]): Scale to
            :attr:`~mmadc.evaluation.ADCSampleRateMetric.samples`.

    Returns:
        tuple[list, dict]: The sample keys, and stage to scale to the
        samples' rates in that order.

    Raises:
        RuntimeError: The scales did not see the same samples.
    """
    scales = list(runs)
    keys = list(runs[scales[0]]['key'])
    out: 'OrderedDict[str, dict]' = OrderedDict(
        (stage, OrderedDict()) for stage in runs[scales[0]]['stage_rate'])
    for scale in scales:
        run = runs[scale]
        order = list(range(len(keys)))
        if list(run['key']) != keys:
            position = {k: i for i, k in enumerate(run['key'])}
            if sorted(
                    run['key']) != sorted(keys) or len(position) != len(keys):
                raise RuntimeError(
                    f'the run at scale {scale:g} saw other samples than the '
                    f'one at scale {scales[0]:g}: cannot pair them')
            order = [position[k] for k in keys]
        for stage in out:
            values = np.asarray(run['stage_rate'][stage], np.float64)
            out[stage][scale] = values[order]
    return keys, out


def scale_report(runs: Dict[float, dict],
                 summaries: Dict[float, dict],
                 num_resamples: int = NUM_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED,
                 **meta) -> dict:
    """The scale response of every stage (:func:`scale_curve`) and the
    mean rate of every layer per scale.

    Args:
        runs (dict[float, dict]): Scale to the metric's ``samples``.
        summaries (dict[float, dict]): Scale to the metric's ``summary``.
        num_resamples (int): Bootstrap resamples. Defaults to 1000.
        seed (int): Bootstrap seed. Defaults to 0.
        **meta: Top-level entries to put first (config, checkpoint, ...).

    Returns:
        dict: ``meta``, then ``scales``, ``num_samples``, ``bootstrap``,
        ``stages`` (stage to :func:`scale_curve`), ``layers`` (name to
        ``stage``, ``title`` and ``mean``: one value per scale) and
        ``samples`` (``key`` and, per stage and scale, each sample's
        rate).
    """
    scales = sorted(runs)
    keys, stage_rates = paired_stage_rates(
        OrderedDict((s, runs[s]) for s in scales))
    layers = OrderedDict()
    for name, entry in summaries[scales[0]]['layers'].items():
        layers[name] = OrderedDict(
            stage=entry['stage'],
            title=adc_layer_title(name),
            mean=[summaries[s]['layers'][name]['mean'] for s in scales])
    out = OrderedDict(meta)
    out.update(
        scales=scales,
        num_samples=len(keys),
        bootstrap=dict(
            method='95% bootstrap percentile intervals over samples, every '
            'scale resampled with the same samples; largest_minus_smallest: '
            'the mean over samples of the per-sample difference',
            num_resamples=int(num_resamples),
            seed=int(seed)),
        stages=OrderedDict((stage, scale_curve(rates, num_resamples, seed))
                           for stage, rates in stage_rates.items()),
        layers=layers,
        samples=dict(
            key=keys,
            stage_rate=OrderedDict((stage,
                                    OrderedDict((f'{s:g}', rates[s].tolist())
                                                for s in scales))
                                   for stage, rates in stage_rates.items())))
    return out


def _value_text(result: dict) -> str:
    if result['value'] is None:
        return 'undefined'
    if result['interval'] is None:
        return f'{result["value"]:.3f}'
    low, high = result['interval']
    return f'{result["value"]:.3f} [{low:.3f}, {high:.3f}]'


def scale_lines(report: dict) -> List[str]:
    """One stdout line per stage: the mean rate at each scale with its
    interval, and the largest minus the smallest scale's."""
    lines = []
    for stage, curve in report['stages'].items():
        parts = [
            f's={entry["scale"]:g} {_value_text(entry)}'
            for entry in curve['mean']
        ]
        diff = curve['largest_minus_smallest']
        text = f'{stage}: mean rate ' + ', '.join(parts)
        if diff['value'] is not None:
            verdict = '' if diff['excludes_zero'] is None else (
                ' (excludes 0)' if diff['excludes_zero'] else ' (includes 0)')
            big, small = diff['scales']
            text += (f'; s={big:g} - s={small:g} {_value_text(diff)}'
                     f'{verdict}')
        lines.append(text)
    return lines


def plot_scale_response(report: dict,
                        path: str,
                        title: Optional[str] = None) -> str:
    """One PNG: each stage's mean rate against the scale (log2 axis),
    with its interval as error bars.

    Args:
        report (dict): :func:`scale_report`.
        path (str): Output file.
        title (str, optional): Figure title.

    Returns:
        str: ``path``.
    """
    fig = new_figure(6., 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for stage, curve in report['stages'].items():
        points = [e for e in curve['mean'] if e['value'] is not None]
        xs = np.array([e['scale'] for e in points])
        ys = np.array([e['value'] for e in points])
        low = np.array([(e['interval'] or [e['value']] * 2)[0]
                        for e in points])
        high = np.array([(e['interval'] or [e['value']] * 2)[1]
                         for e in points])
        ax.errorbar(
            xs,
            ys,
            yerr=np.stack([ys - low, high - ys]),
            marker='o',
            markersize=4,
            capsize=3,
            linewidth=1,
            label=stage)
    ax.set_xscale('log', base=2)
    ax.set_xticks(report['scales'])
    ax.set_xticklabels([f'{s:g}' for s in report['scales']])
    ax.set_xlabel('scale s (input resolution x s, same content)')
    ax.set_ylabel('mean dilation rate (95% bootstrap interval)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(
        title or f'ADC rates against scale (n={report["num_samples"]})',
        fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def check_scales(scales: Sequence[float]) -> List[float]:
    """The ``--scales`` values, checked: each finite, in ``(0, 8]``, none
    twice.

    Raises:
        ScaleResponseError: A scale out of range or given twice.
    """
    seen = []
    for scale in scales:
        if not math.isfinite(scale) or scale <= 0 or scale > MAX_SCALE:
            raise ScaleResponseError(
                f'--scales: each scale must be > 0 and <= {MAX_SCALE:g}, '
                f'got {scale:g}')
        if scale in seen:
            raise ScaleResponseError(f'--scales: {scale:g} is given twice')
        seen.append(float(scale))
    if not seen:
        raise ScaleResponseError('--scales: give at least one scale')
    return seen
