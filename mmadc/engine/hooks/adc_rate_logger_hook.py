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

from mmadc.analysis.rate_statistics import (STAGE_PATTERN, find_adc_layers,
                                            layer_stage)

DATA_BATCH = Optional[dict]


def stage_rate_scalars(rates_by_stage: Dict[str, torch.Tensor],
                       prefix: str = 'adc_rate') -> 'OrderedDict[str, float]':
    """Mean, min and max of the rates of each stage (and of all layers).

    Args:
        rates_by_stage (dict[str, Tensor]): Flat rates per stage.
        prefix (str): Key prefix.

    Returns:
        OrderedDict[str, float]: ``{prefix}/{stage}/{mean,min,max}`` for
        every stage and for ``all``.
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

    Enable it from any config (after ``import mmadc`` / ``custom_imports``):

    .. code-block:: python

        custom_hooks = [dict(type='ADCRateLoggerHook', interval=50)]

    Args:
        interval (int): Log every ``interval`` training iterations.
            Defaults to 50.
        histogram (bool): Also log histograms. Defaults to True.
        bins (int): Histogram bins. Defaults to 50.
        prefix (str): Scalar/image name prefix. Defaults to ``'adc_rate'``.
        stage_pattern (str): Regular expression whose first group is the
            stage name of a layer's qualified name; layers without a match
            form their own stage. Defaults to
            :data:`~mmadc.analysis.rate_statistics.STAGE_PATTERN`.
        log_text (bool): Also write a summary line to the text log.
            Defaults to True.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 50,
                 histogram: bool = True,
                 bins: int = 50,
                 prefix: str = 'adc_rate',
                 stage_pattern: str = STAGE_PATTERN,
                 log_text: bool = True) -> None:
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
        if self.histogram and is_main_process():
            self._log_histograms(runner, rates, step)

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
