# SimpleBaseline ResNet-50, 256x192, without ADC: the baseline of "Adaptive
# Dilated Convolution for Human Pose Estimation" (Luo et al.). Paper target
# (Tables I and III, COCO val2017): AP 70.4.
#
# The paper's recipe (Sec. IV-A) on top of mmpose's config of this model; its
# comments explain every setting.
_base_ = ['./_base_/simplebaseline_140e_coco.py']
