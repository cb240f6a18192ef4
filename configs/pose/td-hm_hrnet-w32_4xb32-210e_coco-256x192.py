# HRNet-W32, 256x192, without ADC: the baseline of "Adaptive Dilated
# Convolution for Human Pose Estimation" (Luo et al.). Paper target (Table I,
# COCO val2017): AP 74.4.
#
# The paper's HRNet recipe (Sec. IV-A): the SimpleBaseline recipe with the
# 210-epoch schedule; the bases' comments explain every setting.
_base_ = ['./_base_/hrnet_210e_coco.py']
