# SimpleBaseline ResNet-101, 256x192, without ADC: the baseline of "Adaptive
# Dilated Convolution for Human Pose Estimation" (Luo et al.). Paper target
# (Table I, COCO val2017): AP 71.4.
#
# The paper's recipe is the one of td-hm_res50_4xb32-140e_coco-256x192.py
# (its comments explain every setting); only the depth and the ImageNet
# checkpoint differ.
_base_ = ['./td-hm_res50_4xb32-140e_coco-256x192.py']

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
