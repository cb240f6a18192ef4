# The pose demo with ADC: SimpleBaseline ResNet-18 whose residual blocks use
# adaptive dilated convolution (one rate per input channel), trained exactly
# like its baseline td-hm_res18_1xb32-40e_synthetic-coco-128x96.py.
_base_ = ['./td-hm_res18_1xb32-40e_synthetic-coco-128x96.py']

model = dict(backbone=dict(type='ResNetADC', adc_cfg=dict(type='ADC')))

# ADC's rates during training (and a warning if many stop at 0), after the
# base's hooks (mmpose's SyncBuffersHook)
custom_hooks = _base_.custom_hooks + [
    dict(type='ADCRateLoggerHook', interval=50)
]
