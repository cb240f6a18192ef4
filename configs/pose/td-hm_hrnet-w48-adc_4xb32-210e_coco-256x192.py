# HRNet-W48 + ADC, 256x192. Paper target (Table I, COCO val2017): AP 75.5
# (baseline 75.1).
#
# ADC replaces conv2 of every residual block: the Bottlenecks of stage 1 and
# the BasicBlocks of the branches of stages 2-4. dilation_groups=None means one
# rate per input channel (g = C_in), the paper's default. The ImageNet
# checkpoint of the base config loads into every weight but the rate
# regressors, which start at rate 1 (ADC equals the conv it replaces).
# Everything else (recipe, data) is the baseline config.
_base_ = ['./td-hm_hrnet-w48_4xb32-210e_coco-256x192.py']

custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='HRNetADC',
        adc_cfg=dict(type='ADC', dilation_groups=None),
        adc_stages=(True, True, True, True)))
