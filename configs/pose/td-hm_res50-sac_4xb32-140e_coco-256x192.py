# SimpleBaseline ResNet-50 + SAC, 256x192 (Table III). Paper target (COCO
# val2017): AP 71.1 (ADC 71.8, baseline 70.4).
#
# Scale-adaptive convolution (Zhang et al.) in place of ADC: one scale per
# output position, shared by all channels, predicted by a conv initialised to
# scale 1 (mmadc's ScaleAdaptiveConv2d; 'SAC' in adc_cfg selects it). It
# replaces the same convs as ADC (conv2 of every residual block); the ImageNet
# weights load into everything but its predictor. Everything else is the
# baseline config.
_base_ = ['./td-hm_res50_4xb32-140e_coco-256x192.py']

custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='ResNetADC',
        adc_cfg=dict(type='SAC'),
        adc_stages=(True, True, True, True)))
