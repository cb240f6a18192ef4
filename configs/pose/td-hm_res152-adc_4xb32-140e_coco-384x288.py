# SimpleBaseline ResNet-152 + ADC, 384x288. The paper reports no 384x288
# figures; compare with td-hm_res152_4xb32-140e_coco-384x288.py.
#
# ADC replaces conv2, the 3x3 conv, of every residual block of the four stages
# (Fig. 4). dilation_groups=None means one rate per input channel (g = C_in),
# the paper's default. The ImageNet checkpoint of the base config loads into
# every weight but the rate regressors, which start at rate 1 (ADC equals the
# conv it replaces). Everything else (recipe, data) is the baseline config.
_base_ = ['./td-hm_res152_4xb32-140e_coco-384x288.py']

custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='ResNetADC',
        adc_cfg=dict(type='ADC', dilation_groups=None),
        adc_stages=(True, True, True, True)))
