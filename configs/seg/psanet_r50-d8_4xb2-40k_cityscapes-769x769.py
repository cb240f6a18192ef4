# PSANet, dilated ResNet-50-V1c (output stride 8), Cityscapes 769x769, 40k
# iterations, without ADC: the baseline of Table IV of "Adaptive Dilated
# Convolution for Human Pose Estimation" (Luo et al.). Paper target
# (Cityscapes val, mIoU): 77.99.
#
# mmseg's own config, unchanged: PSANet head (point-wise spatial attention;
# needs mmcv.ops.PSAMask), SyncBN, SGD lr 0.01 with poly decay, 4 GPUs x 2
# images, backbone from open-mmlab://resnet50_v1c.
_base_ = ['mmseg::psanet/psanet_r50-d8_4xb2-40k_cityscapes-769x769.py']

# Importing mmadc stops with the fix where mmcv's compiled ops (PSAMask) are
# missing (mmadc.compat.compiled_ops), before mmseg asks for "mmcv-full".
custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)
