# Copyright (c) mmadc contributors. All rights reserved.
"""Dilation-rate statistics of ADC layers by person size (Fig. 6).

The pieces, from the bottom up:

- :func:`find_adc_layers` / :func:`layer_stage` / :func:`describe_layer`:
  the :class:`~mmadc.ops.AdaptiveDilatedConv2d` layers of a model and the
  stage (``layer1`` .. ``layer4`` in ResNets, ``layer1`` / ``stage2`` ..
  ``stage4`` in HRNet) and block they belong to, read from their names.
- :class:`ADCRateCollector`: forward hooks that copy every ADC layer's
  ``last_rates`` (``(N, g)``: one rate per sample and dilation group) after
  each forward.
- :class:`RunningStats`: per-component count, mean, variance, min and max of
  a stream of vectors, merged batch by batch with Chan et al.'s pairwise
  update (numerically sound, unlike accumulating sums of squares).
- :func:`size_group` / :func:`instance_area`: COCO's small / medium / large
  split of a person instance.
- :class:`SizeGroupedRateStats`: a :class:`RunningStats` per layer and size
  group, its JSON summary, :func:`write_rate_csv` and
  :func:`plot_rate_statistics` (Fig. 6 style PNGs).
- :func:`load_analysis_config`, :func:`build_analysis_model`,
  :func:`build_analysis_dataloader` and :func:`iter_batch_rates`: run a
  model of an mmpose/mmseg config over its val split and yield the rates of
  every batch (shared with the receptive-field report).

Rates are kept **per dilation group**, not expanded to channels: the
``C_in / g`` channels of a group share one rate, so a per-channel table
would repeat each value ``C_in / g`` times. With the paper's default
``g = C_in`` a group is a channel; the summary records ``in_channels``,
``dilation_groups`` and ``channels_per_group`` (group ``j`` holds channels
``j * C_in / g .. (j + 1) * C_in / g - 1``). Variances are population
variances (``ddof=0``, as ``numpy.var``) over the instances of a group.
"""
import copy
import csv
import functools
import json
import math
import os
import os.path as osp
import re
import warnings
from collections import OrderedDict
from typing import (Dict, Iterator, List, Optional, Sequence, Tuple, Union)

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from torch import Tensor

from mmadc.ops import AdaptiveDilatedConv2d
from mmadc.utils.checkpoint_file import check_checkpoint_file

#: Size groups in order, and COCO's area thresholds between them (pixels^2).
SIZE_GROUPS: Tuple[str, ...] = ('small', 'medium', 'large')
SMALL_MAX_AREA = 32**2
MEDIUM_MAX_AREA = 96**2
#: Where a person's area comes from: the annotation's ``area`` (segment
#: area, what COCOeval's AP^M / AP^L use) or its box ``w * h`` (the paper).
SIZE_SOURCES = ('area', 'bbox')

#: A stage is the first name component like ``layer3`` or ``stage2``.
STAGE_PATTERN = r'(?:^|\.)((?:layer|stage)\d+)(?=\.|$)'

#: Line colours of the size groups in the plots.
GROUP_COLOURS = {'small': '#1f77b4', 'medium': '#ff7f0e', 'large': '#2ca02c'}


def size_group(area: float) -> str:
    """COCO size group of a person of the given area.

    COCOeval's area ranges ``[0, 32^2]``, ``[32^2, 96^2]``, ``[96^2, 1e10]``
    are closed, so an area of exactly ``32^2`` counts in both the small and
    the medium range there. A partition needs a choice; like the paper
    ("smaller than 32x32", "greater than 32x32 but smaller than 96x96") we
    use half-open ranges closed below:

    - small: ``area < 32^2``
    - medium: ``32^2 <= area < 96^2``
    - large: ``area >= 96^2``

    Args:
        area (float): Area in pixels^2.

    Returns:
        str: ``'small'``, ``'medium'`` or ``'large'``.
    """
    area = float(area)
    if not math.isfinite(area) or area < 0:
        raise ValueError(f'area must be finite and >= 0, got {area}')
    if area < SMALL_MAX_AREA:
        return 'small'
    if area < MEDIUM_MAX_AREA:
        return 'medium'
    return 'large'


class RunningStats:
    """Running count, mean, variance, min and max of vectors.

    Batches are merged with the pairwise update of Chan, Golub and LeVeque:
    each batch's mean and sum of squared deviations are computed in two
    passes and combined with the running ones, in float64. Unlike
    ``E[x^2] - E[x]^2`` this does not cancel catastrophically when the
    variance is small next to the mean (rates near 1 with tiny spread).

    Args:
        dim (int): Length of the vectors.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f'dim must be >= 1, got {dim}')
        self.dim = dim
        self.count = 0
        self._mean = np.zeros(dim)
        self._m2 = np.zeros(dim)  # sum of squared deviations from the mean
        self._min = np.full(dim, np.inf)
        self._max = np.full(dim, -np.inf)

    def update(self, values: Union[np.ndarray, Tensor]) -> None:
        """Add a batch of vectors.

        Args:
            values (np.ndarray | Tensor): Shape ``(N, dim)`` (or ``(dim,)``
                for one vector).
        """
        if isinstance(values, Tensor):
            values = values.detach().cpu().double().numpy()
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[None]
        if values.ndim != 2 or values.shape[1] != self.dim:
            raise ValueError(f'values must have shape (N, {self.dim}), got '
                             f'{values.shape}')
        num = values.shape[0]
        if num == 0:
            return
        batch_mean = values.mean(axis=0)
        batch_m2 = np.square(values - batch_mean).sum(axis=0)
        total = self.count + num
        delta = batch_mean - self._mean
        self._mean = self._mean + delta * (num / total)
        self._m2 = self._m2 + batch_m2 + np.square(delta) * (
            self.count * num / total)
        self.count = total
        self._min = np.minimum(self._min, values.min(axis=0))
        self._max = np.maximum(self._max, values.max(axis=0))

    @property
    def mean(self) -> np.ndarray:
        """Mean per component (NaN before any update)."""
        return self._mean.copy() if self.count else np.full(self.dim, np.nan)

    @property
    def var(self) -> np.ndarray:
        """Population variance (``ddof=0``) per component (NaN if empty)."""
        if not self.count:
            return np.full(self.dim, np.nan)
        return self._m2 / self.count

    @property
    def min(self) -> np.ndarray:
        """Minimum per component (NaN if empty)."""
        return self._min.copy() if self.count else np.full(self.dim, np.nan)

    @property
    def max(self) -> np.ndarray:
        """Maximum per component (NaN if empty)."""
        return self._max.copy() if self.count else np.full(self.dim, np.nan)


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP/FSDP-style wrapper (names without
    ``module.``)."""
    return model.module if is_model_wrapper(model) else model


def find_adc_layers(model: nn.Module) -> 'OrderedDict[str, nn.Module]':
    """Every :class:`~mmadc.ops.AdaptiveDilatedConv2d` of a model.

    All modules are searched, not only the convs swapped by the ADC blocks
    (:func:`~mmadc.models.backbones.iter_replaced_convs`), so ADC layers
    built through ``conv_cfg=dict(type='ADC')`` are found too; DC and SAC
    layers are skipped (they have no dilation rates).

    Args:
        model (nn.Module): The model (a model wrapper is unwrapped first).

    Returns:
        OrderedDict[str, nn.Module]: Qualified name (e.g.
        ``'backbone.layer1.0.conv2'``) to layer, in module order.
    """
    return OrderedDict((name, module)
                       for name, module in _unwrap(model).named_modules()
                       if isinstance(module, AdaptiveDilatedConv2d))


def require_adc_layers(model: nn.Module,
                       source: str) -> 'OrderedDict[str, nn.Module]':
    """:func:`find_adc_layers`, raising if there are none.

    Args:
        model (nn.Module): The model.
        source (str): What the model came from, for the error message
            (e.g. the config path).

    Returns:
        OrderedDict[str, nn.Module]: The ADC layers.
    """
    layers = find_adc_layers(model)
    if not layers:
        raise ValueError(
            f'no ADC layers in the model of {source}: use an ADC backbone '
            "(e.g. backbone type 'ResNetADC' or 'HRNetADC') or "
            "conv_cfg=dict(type='ADC')")
    return layers


def layer_stage(name: str, pattern: str = STAGE_PATTERN) -> str:
    """The stage of a layer, read from its qualified name.

    Examples: ``backbone.layer1.2.conv2`` -> ``layer1``;
    ``backbone.stage3.0.branches.1.3.conv2`` -> ``stage3``. Names without a
    match (e.g. an ADC layer in a head) are their own stage.

    Args:
        name (str): Qualified module name.
        pattern (str): Regular expression whose first group is the stage.

    Returns:
        str: The stage.
    """
    match = re.search(pattern, name)
    return match.group(1) if match else name


def describe_layer(name: str, pattern: str = STAGE_PATTERN) -> str:
    """A short title ``'<stage> block <b>'`` for a layer (Fig. 6 style).

    ResNet blocks (``layer<s>.<i>.conv2``) get the 1-based block number,
    like the paper's ``ADC_stageID_blockID``; deeper paths (HRNet's
    ``stage<s>.<module>.branches.<branch>.<block>.conv2``) keep the path
    between the stage and the conv.

    Args:
        name (str): Qualified module name.
        pattern (str): Stage pattern, see :func:`layer_stage`.

    Returns:
        str: E.g. ``'layer1 block 3'`` for ``backbone.layer1.2.conv2``.
    """
    match = re.search(pattern, name)
    if not match:
        return name
    rest = name[match.end():].strip('.').split('.')[:-1]  # drop conv name
    if len(rest) == 1 and rest[0].isdigit():
        return f'{match.group(1)} block {int(rest[0]) + 1}'
    return f'{match.group(1)} {".".join(rest)}' if rest else match.group(1)


class ADCRateCollector:
    """Records the rates of every ADC layer at every forward.

    A forward hook on each layer copies its ``last_rates`` (detached,
    ``(N, g)``) to the CPU; :meth:`pop` returns what was recorded since the
    previous call. Use it as a context manager (hooks removed on exit).

    Args:
        model (nn.Module): The model; it must contain ADC layers.
        source (str): What the model came from, for the error message.

    Example:
        >>> with ADCRateCollector(model) as collector:
        ...     model(inputs)
        ...     rates = collector.pop()  # {'backbone.layer1.0.conv2': ...}
    """

    def __init__(self, model: nn.Module, source: str = 'the model') -> None:
        self.layers = require_adc_layers(model, source)
        self._records: Dict[str, List[Tensor]] = {n: [] for n in self.layers}
        self._handles: list = []

    def _record(self, name: str, module: nn.Module, args, output) -> None:
        rates = getattr(module, 'last_rates', None)
        if rates is not None:
            self._records[name].append(rates.detach().float().cpu())

    def attach(self) -> None:
        """Register the forward hooks (idempotent)."""
        if self._handles:
            return
        self._handles = [
            layer.register_forward_hook(functools.partial(self._record, name))
            for name, layer in self.layers.items()
        ]

    def detach(self) -> None:
        """Remove the forward hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def pop(self) -> Dict[str, Tensor]:
        """Rates recorded since the last call, one ``(rows, g)`` tensor per
        layer that ran (rows: samples over all its forwards)."""
        out = {
            name: torch.cat(recs) if len(recs) > 1 else recs[0]
            for name, recs in self._records.items() if recs
        }
        for recs in self._records.values():
            recs.clear()
        return out

    def __enter__(self) -> 'ADCRateCollector':
        self.attach()
        return self

    def __exit__(self, *exc) -> None:
        self.detach()


def instance_area(data_sample, size_by: str = 'area') -> Tuple[float, str]:
    """The area of the person instance of a top-down data sample.

    mmpose's ``PackPoseInputs`` keeps the raw COCO annotation in the
    sample's ``raw_ann_info`` meta field (unless a config drops it from
    ``meta_keys``). Sources, in order:

    1. ``size_by='area'``: the annotation's ``area`` (the segment area that
       COCOeval's size ranges use);
    2. the annotation's box ``w * h`` (the paper's "areas of their bounding
       boxes"; also the fallback when an annotation has no ``area``);
    3. the box the sample was cropped with (``gt_instances.bboxes``, xyxy,
       clipped to the image: the only source without ``raw_ann_info``).

    Args:
        data_sample (PoseDataSample): One data sample.
        size_by (str): ``'area'`` or ``'bbox'``.

    Returns:
        tuple[float, str]: The area and its source (``'area'``,
        ``'ann_bbox'`` or ``'input_bbox'``).
    """
    if size_by not in SIZE_SOURCES:
        raise ValueError(f'size_by must be one of {SIZE_SOURCES}, got '
                         f'{size_by!r}')
    meta = data_sample.metainfo
    ann = meta.get('raw_ann_info')
    if isinstance(ann, (list, tuple)) or (ann is None and isinstance(
            meta.get('id'), (list, tuple))):
        raise ValueError(
            'rate statistics by person size need one person per model '
            'input (a top-down dataset); got a bottom-up sample of image '
            f'{meta.get("img_id")}')
    if isinstance(ann, dict):
        if size_by == 'area' and ann.get('area') is not None:
            return float(ann['area']), 'area'
        bbox = ann.get('bbox')
        if bbox is not None and len(bbox) == 4:
            return float(bbox[2]) * float(bbox[3]), 'ann_bbox'
    gt = data_sample.get('gt_instances')
    bboxes = None if gt is None else gt.get('bboxes')
    if bboxes is not None and len(bboxes) == 1:
        x1, y1, x2, y2 = (float(v) for v in np.asarray(bboxes).reshape(4))
        return max(x2 - x1, 0.) * max(y2 - y1, 0.), 'input_bbox'
    raise ValueError(
        'cannot find the person area of data sample '
        f'{meta.get("id", meta.get("img_path"))}: it has neither '
        "'raw_ann_info' (keep it in PackPoseInputs' meta_keys) nor one "
        'box in gt_instances.bboxes')


def _floats(values: np.ndarray) -> List[Optional[float]]:
    """A JSON-ready list: NaN becomes None."""
    return [None if math.isnan(v) else float(v) for v in values]


def _pairs(value) -> List[int]:
    return list(value) if isinstance(value, (tuple, list)) else [value] * 2


def layer_info(name: str, layer: nn.Module) -> dict:
    """Static description of an ADC layer for reports.

    Args:
        name (str): Qualified name.
        layer (nn.Module): The ADC layer.

    Returns:
        dict: ``stage``, ``block`` (title), ``in_channels``,
        ``dilation_groups``, ``channels_per_group``, ``kernel_size``,
        ``dilation`` (the base dilation ``d``).
    """
    groups = int(layer.dilation_groups)
    return dict(
        stage=layer_stage(name),
        block=describe_layer(name),
        in_channels=int(layer.in_channels),
        dilation_groups=groups,
        channels_per_group=int(layer.in_channels) // groups,
        kernel_size=_pairs(layer.kernel_size),
        dilation=_pairs(layer.dilation))


class SizeGroupedRateStats:
    """Rate statistics per ADC layer, dilation group and person size group.

    Args:
        layers (dict[str, nn.Module]): The ADC layers
            (:func:`find_adc_layers`).
    """

    def __init__(self, layers: Dict[str, nn.Module]) -> None:
        self.layers = OrderedDict(layers)
        self.stats = {
            name: {
                group: RunningStats(int(layer.dilation_groups))
                for group in SIZE_GROUPS + ('all', )
            }
            for name, layer in self.layers.items()
        }
        self.counts = {group: 0 for group in SIZE_GROUPS}
        self.area_sources: Dict[str, int] = {}

    def update(self,
               rates: Dict[str, Tensor],
               groups: Sequence[str],
               sources: Sequence[str] = ()) -> None:
        """Add the rates of one batch.

        Args:
            rates (dict[str, Tensor]): ``(N, g)`` rates per layer, row ``i``
                for instance ``i`` (:meth:`ADCRateCollector.pop`).
            groups (Sequence[str]): Size group of each instance.
            sources (Sequence[str]): Where each area came from (counted for
                the report).
        """
        num = len(groups)
        bad = [g for g in groups if g not in SIZE_GROUPS]
        if bad:
            raise ValueError(f'unknown size groups {sorted(set(bad))}; use '
                             f'{SIZE_GROUPS}')
        for name in self.layers:
            rows = None if name not in rates else rates[name].shape[0]
            if rows != num:
                raise RuntimeError(
                    f'ADC layer {name} recorded {rows or 0} rate rows for '
                    f'{num} instances: rate statistics need exactly one '
                    'forward per instance (flip test and test-time '
                    'augmentation must be off)')
        index = np.asarray(groups)
        for name, layer_rates in rates.items():
            if name not in self.stats:
                continue
            values = layer_rates.detach().cpu().double().numpy()
            self.stats[name]['all'].update(values)
            for group in SIZE_GROUPS:
                mask = index == group
                if mask.any():
                    self.stats[name][group].update(values[mask])
        for group in groups:
            self.counts[group] += 1
        for source in sources:
            self.area_sources[source] = self.area_sources.get(source, 0) + 1

    def summary(self, **meta) -> dict:
        """A JSON-ready summary.

        Args:
            **meta: Extra top-level entries (config, checkpoint, ...).

        Returns:
            dict: ``num_instances`` per group (and ``all``), the size-group
            thresholds, and per layer its :func:`layer_info` plus, per size
            group, ``count``, ``mean`` and ``var`` lists (one entry per
            dilation group; None where a group has no instances).
        """
        layers = OrderedDict()
        for name, layer in self.layers.items():
            entry = layer_info(name, layer)
            entry['groups'] = OrderedDict((
                group,
                dict(
                    count=st.count, mean=_floats(st.mean), var=_floats(st.var))
            ) for group, st in self.stats[name].items())
            layers[name] = entry
        counts = dict(self.counts)
        counts['all'] = sum(self.counts.values())
        out = dict(meta)
        out.update(
            size_groups=dict(
                small=f'area < {SMALL_MAX_AREA}',
                medium=f'{SMALL_MAX_AREA} <= area < {MEDIUM_MAX_AREA}',
                large=f'area >= {MEDIUM_MAX_AREA}'),
            area_sources=dict(self.area_sources),
            num_instances=counts,
            statistics='per dilation group (channels_per_group channels '
            'share a rate); var is the population variance (ddof=0)',
            layers=layers)
        return out


def dump_json(obj, path: str) -> None:
    """Write JSON indented, but with lists of plain values on one line
    (per-channel lists would otherwise take a line per number)."""
    text = json.dumps(obj, indent=1)
    text = re.sub(r'\[\s+([^\[\]{}"]*?)\s+\]',
                  lambda m: '[' + re.sub(r'\s+', ' ', m.group(1)) + ']', text)
    with open(path, 'w') as f:
        f.write(text + '\n')


def write_rate_csv(summary: dict, path: str) -> None:
    """Write a summary as a long CSV table.

    One row per layer, dilation group and size group with columns
    ``layer, stage, block, dilation_group, first_channel, last_channel,
    size_group, count, mean, var``.

    Args:
        summary (dict): :meth:`SizeGroupedRateStats.summary`.
        path (str): Output file.
    """
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow([
            'layer', 'stage', 'block', 'dilation_group', 'first_channel',
            'last_channel', 'size_group', 'count', 'mean', 'var'
        ])
        for name, entry in summary['layers'].items():
            per = entry['channels_per_group']
            for group, st in entry['groups'].items():
                for j, (mean, var) in enumerate(zip(st['mean'], st['var'])):
                    writer.writerow([
                        name, entry['stage'], entry['block'], j, j * per,
                        (j + 1) * per - 1, group, st['count'],
                        '' if mean is None else repr(mean),
                        '' if var is None else repr(var)
                    ])


def _new_figure(width: float, height: float):
    """A matplotlib figure on the Agg canvas, without touching pyplot's
    global backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_rate_statistics(summary: dict, out_dir: str) -> List[str]:
    """Fig. 6 style plots: one PNG per stage, one subplot per block.

    Each subplot shows the mean rate of every channel (dilation group) of
    one ADC layer, one line per size group (legend with instance counts),
    titled by stage and block.

    Args:
        summary (dict): :meth:`SizeGroupedRateStats.summary`.
        out_dir (str): Directory for ``rates_<stage>.png``.

    Returns:
        list[str]: The written files.
    """
    os.makedirs(out_dir, exist_ok=True)
    by_stage: 'OrderedDict[str, List[Tuple[str, dict]]]' = OrderedDict()
    for name, entry in summary['layers'].items():
        by_stage.setdefault(entry['stage'], []).append((name, entry))
    counts = summary.get('num_instances', {})
    files = []
    for stage, entries in by_stage.items():
        cols = min(4, len(entries))
        rows = math.ceil(len(entries) / cols)
        fig = _new_figure(4.2 * cols, 3.2 * rows)
        for k, (name, entry) in enumerate(entries):
            ax = fig.add_subplot(rows, cols, k + 1)
            for group in SIZE_GROUPS:
                mean = entry['groups'][group]['mean']
                if entry['groups'][group]['count'] == 0:
                    continue
                ax.plot(
                    np.arange(len(mean)),
                    np.array(mean, dtype=float),
                    color=GROUP_COLOURS[group],
                    linewidth=0.9,
                    label=f'{group} (n={counts.get(group, "?")})')
            ax.set_title(entry['block'], fontsize=10)
            per_channel = entry['channels_per_group'] == 1
            ax.set_xlabel('channel' if per_channel else
                          f'dilation group ({entry["channels_per_group"]} '
                          'channels each)')
            ax.set_ylabel('mean dilation rate')
            ax.grid(alpha=0.3)
            if k == 0:
                ax.legend(fontsize=8)
        fig.suptitle(f'Mean ADC dilation rates by person size: {stage}')
        fig.tight_layout()
        path = osp.join(out_dir, f'rates_{stage}.png')
        fig.savefig(path, dpi=100)
        files.append(path)
    return files


def load_analysis_config(config: str,
                         cfg_options: Optional[dict] = None) -> Config:
    """Load a config for an analysis tool.

    Args:
        config (str): Config file path.
        cfg_options (dict, optional): Overrides (``--cfg-options``).

    Returns:
        Config: The config (``custom_imports`` done).
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config: "{config}" does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_analysis_model(cfg: Config,
                         checkpoint: Optional[str] = None,
                         device: str = 'cpu') -> nn.Module:
    """Build a config's model in eval mode, optionally load a checkpoint.

    The backbone's ``init_cfg`` is dropped (no ImageNet download: the
    checkpoint supplies the weights); without a checkpoint the model keeps
    its construction-time weights, where every ADC rate is exactly 1.
    Pose models run without flip test, so each person is one forward and
    the rates are those of the unflipped crop.

    Args:
        cfg (Config): The config.
        checkpoint (str, optional): Checkpoint file.
        device (str): Device. Defaults to ``'cpu'``.

    Returns:
        nn.Module: The model.
    """
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint
    if checkpoint is not None:
        check_checkpoint_file(checkpoint)
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    model_cfg = copy.deepcopy(cfg.model)
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg.backbone.init_cfg = None
    test_cfg = model_cfg.get('test_cfg')
    if isinstance(test_cfg, dict) and 'flip_test' in test_cfg:
        test_cfg['flip_test'] = False
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        _warn_missing_regressors(model, ckpt, checkpoint)
    return model.to(device).eval()


def _warn_missing_regressors(model: nn.Module, ckpt: dict,
                             checkpoint: str) -> None:
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


def build_analysis_dataloader(cfg: Config,
                              split: str = 'val',
                              num_samples: Optional[int] = None,
                              gt_boxes: bool = True):
    """The config's val (or test) dataloader, in order, optionally cut.

    Args:
        cfg (Config): The config (default scope initialised, e.g. by
            :func:`build_analysis_model`).
        split (str): ``'val'`` or ``'test'``.
        num_samples (int, optional): Use only the first N samples
            (``indices`` of the dataset).
        gt_boxes (bool): For top-down pose datasets, crop persons with
            their ground-truth boxes (``bbox_file=None``) so that every
            sample is a GT person with a known area. Defaults to True.

    Returns:
        DataLoader: The dataloader.
    """
    from mmengine.runner import Runner
    key = f'{split}_dataloader'
    if split not in ('val', 'test') or cfg.get(key) is None:
        raise ValueError(f'split: the config has no {key} (use val or test)')
    loader_cfg = copy.deepcopy(cfg[key])
    dataset = loader_cfg.dataset
    if gt_boxes and 'bbox_file' in dataset:
        dataset.bbox_file = None
    if num_samples is not None:
        if num_samples < 1:
            raise ValueError(f'the number of samples must be >= 1, got '
                             f'{num_samples}')
        dataset.indices = int(num_samples)
    loader_cfg.sampler = dict(
        type='DefaultSampler', shuffle=False, round_up=False)
    if not loader_cfg.get('num_workers'):
        loader_cfg.persistent_workers = False
        # Serialising only shares memory between workers; MMEngine's fails
        # on an empty dataset with "need at least one array to concatenate"
        # instead of the check below.
        dataset.serialize_data = False
    source = osp.join(
        dataset.get('data_root', ''), dataset.get('ann_file', ''))
    try:
        loader = Runner.build_dataloader(loader_cfg)
    except json.JSONDecodeError as err:  # upstream loaders do not name it
        raise ValueError(f'{key}: the annotation file {source} is not valid '
                         f'JSON (truncated?): {err}') from None
    if len(loader.dataset) == 0:
        raise ValueError(
            f'{key}: the dataset ({source or dataset.get("type")}) has no '
            'usable sample (no image with an annotated person or label); '
            'check the annotation file and the data root')
    return loader


def iter_batch_rates(
        model: nn.Module,
        dataloader,
        collector: ADCRateCollector,
        progress: bool = True) -> Iterator[Tuple[dict, Dict[str, Tensor]]]:
    """Run ``model.test_step`` over a dataloader and yield the rates.

    Args:
        model (nn.Module): The model (eval mode).
        dataloader (DataLoader): Batches as the model's ``test_step`` takes
            them.
        collector (ADCRateCollector): Collector on the model's ADC layers.
        progress (bool): Show an mmengine progress bar (per sample).

    Yields:
        tuple[dict, dict[str, Tensor]]: The batch and the rates of each
        layer for it.
    """
    from mmengine.utils import ProgressBar
    bar = ProgressBar(len(dataloader.dataset)) if progress else None
    with torch.no_grad(), collector:
        collector.pop()  # drop anything recorded before
        for batch in dataloader:
            model.test_step(batch)
            yield batch, collector.pop()
            if bar is not None:
                bar.update(len(batch['inputs']))
    if bar is not None:
        bar.file.write('\n')
