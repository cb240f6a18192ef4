# HRNet-W48, 256x192, without ADC: the baseline of "Adaptive Dilated
# Convolution for Human Pose Estimation" (Luo et al.). Paper target (Table I,
# COCO val2017): AP 75.1.
#
# The recipe of td-hm_hrnet-w32_4xb32-210e_coco-256x192.py; only the width
# (48 channels in the high-resolution branch, as in mmpose's config of this
# model) and the ImageNet checkpoint differ.
_base_ = ['./td-hm_hrnet-w32_4xb32-210e_coco-256x192.py']

model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384))),
        init_cfg=dict(checkpoint='https://download.openmmlab.com/mmpose/'
                      'pretrain_models/hrnet_w48-8ef0771d.pth')),
    head=dict(in_channels=48))
