# The segmentation demo with ADC: FCN on a dilated ResNet-18 (V1c) whose
# residual blocks use adaptive dilated convolution, trained exactly like its
# baseline fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128.py.
_base_ = ['./fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128.py']

# ResNetV1cADC is the baseline's ResNetV1c (mmseg's ResNet with
# deep_stem=True, avg_down=False) with ADC.
model = dict(backbone=dict(type='ResNetV1cADC', adc_cfg=dict(type='ADC')))

# ADC's rates during training (and a warning if many stop at 0), after the
# base's hooks
custom_hooks = _base_.custom_hooks + [
    dict(type='ADCRateLoggerHook', interval=50)
]
