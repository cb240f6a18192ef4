# Copyright (c) mmadc contributors. All rights reserved.
"""Log ADC dilation-rate statistics during training."""
import re
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.visualization import TensorboardVisBackend

from mmadc.models.utils import STAGE_PATTERN, find_adc_layers, layer_stage

DATA_BATCH = Optional[dict]


def stage_rate_scalars(rates_by_stage: Dict[str, torch.Tensor],
                       prefix: str = 'adc_rate') -> 'OrderedDict[str, float]':
    """Mean, min, max and dead fraction of the rates of each stage (and of
    all layers).

    Args:
        rates_by_stage (dict[str, Tensor]): Flat rates per stage.
        prefix (str): Key prefix.

    Returns:
        OrderedDict[str, float]: ``{prefix}/{stage}/{mean,min,max,dead}``
        for every stage and for ``all``; ``dead`` is the fraction of rates
        that are exactly 0 (a ReLU regressor's rate there gets no gradient).
    """
    out: 'OrderedDict[str, float]' = OrderedDict()
    groups = OrderedDict(rates_by_stage)
    if rates_by_stage:
        groups['all'] = torch.cat(list(rates_by_stage.values()))
    for stage, values in groups.items():
        values = values.double()
        out[f'{prefix}/{stage}/mean'] = float(values.mean())
        out[f'{prefix}/{stage}/min'] = float(values.min())
        out[f'{prefix}/{stage}/max'] = float(values.max())
        out[f'{prefix}/{stage}/dead'] = float((values == 0).double().mean())
    return out


def render_rate_histogram(rates_by_stage: Dict[str, torch.Tensor],
                          bins: int = 50,
                          title: str = '') -> np.ndarray:
    """An RGB image of one rate histogram per stage (shared x range).

    Args:
        rates_by_stage (dict[str, Tensor]): Flat rates per stage.
        bins (int): Histogram bins.
        title (str): Figure title.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8 RGB image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    stages = list(rates_by_stage)
    fig = Figure(figsize=(3.2 * max(len(stages), 1), 2.8))
    canvas = FigureCanvasAgg(fig)
    values = [rates_by_stage[s].double().numpy() for s in stages]
    low = min((v.min() for v in values), default=0.)
    high = max((v.max() for v in values), default=1.)
    if high - low < 1e-6:  # all rates equal (e.g. 1 at initialisation)
        low, high = low - 0.5, high + 0.5
    for i, (stage, vals) in enumerate(zip(stages, values)):
        ax = fig.add_subplot(1, len(stages), i + 1)
        ax.hist(vals, bins=bins, range=(low, high), color='#4c72b0')
        ax.set_title(stage, fontsize=10)
        ax.set_xlabel('dilation rate')
        if i == 0:
            ax.set_ylabel('channels x samples')
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


@HOOKS.register_module()
class ADCRateLoggerHook(Hook):
    """Log the dilation rates of the ADC layers every N training iterations.

    After every ``interval``-th training iteration the hook reads
    ``last_rates`` (the rates of that iteration's forward, one per sample
    and dilation group) of every :class:`~mmadc.ops.AdaptiveDilatedConv2d`
    of ``runner.model``, groups them by stage (the name component matching
    ``stage_pattern``: ``layer1`` .. ``layer4`` in ResNets; ``layer1``,
    ``stage2`` .. ``stage4`` in HRNet) and logs

    - scalars ``{prefix}/{stage}/{mean,min,max}`` (and ``{prefix}/all/...``)
      through ``runner.visualizer.add_scalars`` at step ``runner.iter + 1``
      (the step ``LoggerHook`` gives that iteration's loss), so
      ``LocalVisBackend`` appends them to ``vis_data/scalars.json`` and a
      ``TensorboardVisBackend`` (or any other backend) receives them; they
      also go to ``runner.message_hub`` under the same keys (without the
      ``train/`` prefix, so the text log's smoothing does not touch them)
      and, with ``log_text=True``, one line to the text log;
    - with ``histogram=True``: a PNG of one rate histogram per stage through
      ``runner.visualizer.add_image`` (``LocalVisBackend`` saves
      ``vis_data/vis_image/{prefix}_histogram_{step}.png``), because
      MMEngine's visualizer has no histogram API; and, for every
      ``TensorboardVisBackend``, ``add_histogram('{prefix}/{stage}', ...)``
      on its writer.

    A rate of exactly 0 is *dead* under the paper's ReLU regressor: it gets
    no gradient, so its channels stay 1x1 convolutions. The ``dead``
    scalar is the fraction of such rates per stage, and once per stage the
    hook warns (naming the layers) when it exceeds ``dead_threshold``.

    Enable it from any config (after ``import mmadc`` / ``custom_imports``),
    appended to the base's hooks (mmpose's bases have ``SyncBuffersHook``
    there):

    .. code-block:: python

        custom_hooks = _base_.custom_hooks + [
            dict(type='ADCRateLoggerHook', interval=50)]

    Args:
        interval (int): Log every ``interval`` training iterations.
            Defaults to 50.
        histogram (bool): Also log histograms. Defaults to True.
        bins (int): Histogram bins. Defaults to 50.
        prefix (str): Scalar/image name prefix. Defaults to ``'adc_rate'``.
        stage_pattern (str): Regular expression whose first group is the
            stage name of a layer's qualified name; layers without a match
            form their own stage. Defaults to
            :data:`~mmadc.models.utils.STAGE_PATTERN`.
        log_text (bool): Also write a summary line to the text log.
            Defaults to True.
        dead_threshold (float): Warn once per stage when more than this
            fraction of its rates is 0. Defaults to 0.25.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 50,
                 histogram: bool = True,
                 bins: int = 50,
                 prefix: str = 'adc_rate',
                 stage_pattern: str = STAGE_PATTERN,
                 log_text: bool = True,
                 dead_threshold: float = 0.25) -> None:
        if isinstance(interval,
                      bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive int, got '
                             f'{interval!r}')
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f'bins must be a positive int, got {bins!r}')
        re.compile(stage_pattern)  # fail early on a bad pattern
        self.interval = interval
        self.histogram = histogram
        self.bins = bins
        self.prefix = prefix
        self.stage_pattern = stage_pattern
        self.log_text = log_text
        if not 0 <= dead_threshold <= 1:
            raise ValueError('dead_threshold must be in [0, 1], got '
                             f'{dead_threshold!r}')
        self.dead_threshold = dead_threshold
        self._warned_stages: set = set()
        self._layers: Optional[OrderedDict] = None

    def before_train(self, runner) -> None:
        """Find the ADC layers of the model (raise if there are none)."""
        self._layers = find_adc_layers(runner.model)
        if not self._layers:
            raise ValueError(
                'ADCRateLoggerHook: no ADC layers in runner.model; remove '
                'the hook from custom_hooks or use an ADC backbone')

    def collect(self) -> 'OrderedDict[str, torch.Tensor]':
        """The rates of the last forward, flattened and grouped by stage.

        Returns:
            OrderedDict[str, Tensor]: Stage to float32 CPU rates (samples x
            dilation groups of every layer of the stage); layers that have
            not run yet are skipped.
        """
        layers = self._layers or {}
        parts: 'OrderedDict[str, list]' = OrderedDict()
        for name, layer in layers.items():
            rates = getattr(layer, 'last_rates', None)
            if rates is None:
                continue
            stage = layer_stage(name, self.stage_pattern)
            parts.setdefault(stage, []).append(
                rates.detach().float().reshape(-1).cpu())
        return OrderedDict((s, torch.cat(v)) for s, v in parts.items())

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Log the rates of this iteration every ``interval`` iterations."""
        if not self.every_n_train_iters(runner, self.interval):
            return
        if self._layers is None:  # before_train was skipped (e.g. a test)
            self.before_train(runner)
        rates = self.collect()
        if not rates:
            return
        step = runner.iter + 1
        scalars = stage_rate_scalars(rates, self.prefix)
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
        runner.visualizer.add_scalars(scalars, step=step)
        if self.log_text:
            runner.logger.info(f'ADC rates (iter {step}): ' + ' | '.join(
                f'{stage} mean {scalars[f"{self.prefix}/{stage}/mean"]:.3f} '
                f'[{scalars[f"{self.prefix}/{stage}/min"]:.3f}, '
                f'{scalars[f"{self.prefix}/{stage}/max"]:.3f}]'
                for stage in rates))
        self._warn_dead(runner, scalars, rates)
        if self.histogram and is_main_process():
            self._log_histograms(runner, rates, step)

    def _warn_dead(self, runner, scalars: Dict[str, float],
                   rates: Dict[str, torch.Tensor]) -> None:
        """Warn once per stage whose dead fraction passes the threshold."""
        for stage in rates:
            dead = scalars[f'{self.prefix}/{stage}/dead']
            if dead <= self.dead_threshold or stage in self._warned_stages:
                continue
            self._warned_stages.add(stage)
            names = [
                name for name, layer in (self._layers or {}).items()
                if layer_stage(name, self.stage_pattern) == stage and layer.
                last_rates is not None and bool((layer.last_rates == 0).any())
            ]
            runner.logger.warning(
                f'ADCRateLoggerHook: {dead:.0%} of the dilation rates of '
                f'stage {stage} are 0 and get no gradient (their channels '
                f'act as 1x1 convolutions) in {", ".join(names)}; a rate '
                "activation that cannot die: adc_cfg=dict(type='ADC', "
                "rate_activation='softplus')")

    def _log_histograms(self, runner, rates: Dict[str, torch.Tensor],
                        step: int) -> None:
        image = render_rate_histogram(
            rates, self.bins, title=f'ADC dilation rates, iter {step}')
        runner.visualizer.add_image(
            f'{self.prefix}_histogram', image, step=step)
        for backend in _vis_backends(runner.visualizer):
            if isinstance(backend, TensorboardVisBackend):
                writer = backend.experiment
                for stage, values in rates.items():
                    writer.add_histogram(f'{self.prefix}/{stage}',
                                         values.numpy(), step)


def _vis_backends(visualizer) -> Sequence:
    """The backends of a visualizer.

    MMEngine's ``Visualizer`` only offers ``get_backend(name)``; the
    name-to-backend dict it keeps is read here to find TensorBoard writers
    whatever name the config gave them.
    """
    return list(getattr(visualizer, '_vis_backends', {}).values())
