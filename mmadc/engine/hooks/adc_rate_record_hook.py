# Copyright (c) mmadc contributors. All rights reserved.
"""Attach the ADC dilation rates of each sample to its prediction."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmadc.models.utils import ADCRateCollector, describe_adc_layers


@HOOKS.register_module()
class ADCRateRecordHook(Hook):
    """Store the rates every ADC layer computes for a sample in the
    sample's prediction, during validation and test.

    Metrics see only a batch and the model's outputs, not the model; this
    hook makes the rates part of the outputs. A forward hook on every
    :class:`~mmadc.ops.AdaptiveDilatedConv2d` records its ``last_rates``
    and a forward hook on the model hands them, after each ``predict``
    forward, to the data samples it returns:

    - ``adc_rates``: dict from the layer's qualified name to a
      ``(forwards, dilation_groups)`` tensor: one row per pass of the
      sample through the layer (1 normally; 2 with a flip test; one per
      window with sliding-window inference);
    - metainfo ``adc_layers``: :func:`~mmadc.models.utils.layer_info` of
      every ADC layer, by name (one dict shared by all samples).

    Rates of a batch are ordered pass by pass (all samples of the first
    forward of the backbone, then all of the second, ...), so sample ``i``
    gets rows ``i, i + N, i + 2N, ...``. Metrics that read them:
    ``ADCRateSizeMetric`` and ``ADCReceptiveFieldMetric``.

    .. code-block:: python

        custom_hooks = [dict(type='ADCRateRecordHook')]
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self._collector: Optional[ADCRateCollector] = None
        self._model_handle = None
        self._layers: Optional[dict] = None

    def _attach(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        self._collector = ADCRateCollector(model, 'runner.model')
        self._layers = describe_adc_layers(model)
        self._collector.attach()
        self._collector.pop()
        self._model_handle = model.register_forward_hook(
            self._to_predictions, with_kwargs=True)

    def _detach(self) -> None:
        if self._collector is not None:
            self._collector.detach()
            self._collector = None
        if self._model_handle is not None:
            self._model_handle.remove()
            self._model_handle = None

    def _to_predictions(self, module, args, kwargs, outputs) -> None:
        rates = self._collector.pop()
        if kwargs.get('mode') != 'predict' or not isinstance(
                outputs, (list, tuple)) or not outputs:
            return
        num = len(outputs)
        for name, values in rates.items():
            if values.shape[0] % num:
                raise RuntimeError(
                    f'ADCRateRecordHook: ADC layer {name} computed '
                    f'{values.shape[0]} rate rows for a batch of {num} '
                    'samples, not a multiple: cannot tell which rates '
                    'belong to which sample')
        for i, sample in enumerate(outputs):
            sample.set_field(
                {
                    name: values[i::num]
                    for name, values in rates.items()
                }, 'adc_rates')
            sample.set_metainfo(dict(adc_layers=self._layers))

    def before_val(self, runner) -> None:
        self._attach(runner)

    def after_val(self, runner) -> None:
        self._detach()

    def before_test(self, runner) -> None:
        self._attach(runner)

    def after_test(self, runner) -> None:
        self._detach()
