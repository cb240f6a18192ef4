# HRNet-W48 + ADC, 384x288. The paper reports no 384x288 figures; compare with
# td-hm_hrnet-w48_4xb24-210e_coco-384x288.py.
#
# ADC replaces conv2 of every residual block: the Bottlenecks of stage 1 and
# the BasicBlocks of the branches of stages 2-4. dilation_groups=None means one
# rate per input channel (g = C_in), the paper's default. The ImageNet
# checkpoint of the base config loads into every weight but the rate
# regressors, which start at rate 1 (ADC equals the conv it replaces).
# Everything else (recipe, data) is the baseline config.
_base_ = ['./td-hm_hrnet-w48_4xb24-210e_coco-384x288.py']

custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='HRNetADC',
        adc_cfg=dict(type='ADC', dilation_groups=None),
        adc_stages=(True, True, True, True)))
