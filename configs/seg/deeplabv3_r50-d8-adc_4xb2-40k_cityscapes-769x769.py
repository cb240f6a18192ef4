# DeepLabV3, dilated ResNet-50-V1c + ADC, Cityscapes 769x769, 40k iterations.
# Paper target (Table IV, Cityscapes val, mIoU): 78.70 (baseline 78.58).
#
# ADC replaces conv2, the 3x3 conv, of every residual block of the four
# stages, with one dilation rate per input channel (dilation_groups=None).
# It keeps the dilation mmseg gives that conv (2 in stage 3, 4 in stage 4,
# halved in each stage's first block by contract_dilation), so the effective
# rate is that dilation x the adaptive rate. ResNetV1cADC is the ResNetV1c
# of the baseline (mmseg's ResNet with deep_stem=True, avg_down=False) with
# ADC. The baseline's open-mmlab://resnet50_v1c checkpoint loads into
# every weight but the rate regressors, which start at rate 1 (the model
# starts as its baseline). Everything else is the baseline config.
_base_ = ['./deeplabv3_r50-d8_4xb2-40k_cityscapes-769x769.py']

model = dict(
    backbone=dict(
        type='ResNetV1cADC',
        adc_cfg=dict(type='ADC', dilation_groups=None),
        adc_stages=(True, True, True, True)))
