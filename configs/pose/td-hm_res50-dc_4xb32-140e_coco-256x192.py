# SimpleBaseline ResNet-50 + DC, 256x192 (Table III). Paper target (COCO
# val2017): AP 71.4 (ADC 71.8, baseline 70.4).
#
# Deformable convolution (Dai et al.) in place of ADC: free per-position,
# per-tap offsets predicted by a zero-initialised conv (mmadc's 'DC' layer). It
# replaces the same convs as ADC (conv2 of every residual block); the ImageNet
# weights load into everything but its predictor. Everything else is the
# baseline config.
_base_ = ['./td-hm_res50_4xb32-140e_coco-256x192.py']

custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='ResNetADC',
        adc_cfg=dict(type='DC'),
        adc_stages=(True, True, True, True)))
