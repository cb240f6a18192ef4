# SimpleBaseline ResNet-101, 384x288, without ADC: the baseline of "Adaptive
# Dilated Convolution for Human Pose Estimation" (Luo et al.). The paper
# reports no 384x288 figures; compare with
# td-hm_res101-adc_4xb32-140e_coco-384x288.py.
#
# The paper's recipe is the one of td-hm_res50_4xb32-140e_coco-384x288.py
# (its comments explain every setting); only the depth and the ImageNet
# checkpoint differ.
_base_ = ['./td-hm_res50_4xb32-140e_coco-384x288.py']

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
