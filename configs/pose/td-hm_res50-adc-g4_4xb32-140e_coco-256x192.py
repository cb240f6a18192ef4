# SimpleBaseline ResNet-50 + ADC with g = 4 dilation groups, 256x192 (Table
# II). Paper target (COCO val2017): AP 71.5 (g = C_in: 71.8, baseline 70.4).
#
# The input channels of each ADC are split into 4 contiguous groups, each with
# its own rate. Everything else is the g = C_in config.
_base_ = ['./td-hm_res50-adc_4xb32-140e_coco-256x192.py']

custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)

model = dict(backbone=dict(adc_cfg=dict(dilation_groups=4)))
