# HRNet-W48, 384x288, without ADC: the baseline of "Adaptive Dilated
# Convolution for Human Pose Estimation" (Luo et al.). The paper reports no
# 384x288 figures; compare with td-hm_hrnet-w48-adc_4xb24-210e_coco-384x288.py.
#
# The recipe of td-hm_hrnet-w48_4xb32-210e_coco-256x192.py at 384x288 inputs,
# with 24 images per GPU in training and testing, the batch of the HRNet
# reference code for this model: 4 x 24 = 96 images per iteration ("4xb24").
# On other hardware keep 96 in total, or pass --auto-scale-lr
# (base_batch_size=96).
_base_ = ['./td-hm_hrnet-w48_4xb32-210e_coco-256x192.py']

auto_scale_lr = dict(base_batch_size=96)

# mmpose's codec at this size (its 384x288 configs: sigma 3) with the
# recipe's decoding (the head's decoder: unbiased=False).
codec = dict(
    _base_.model.head.decoder.to_dict(),
    input_size=(288, 384),
    heatmap_size=(72, 96),
    sigma=3)
model = dict(head=dict(decoder=codec))

# The recipe's pipelines at this size: only what takes the input size or the
# codec changes; the translation stays 40 input pixels (shift_factor is a
# fraction of the input height).
__shift_factor, = (
    t.shift_factor for t in _base_.train_pipeline
    if t.type == 'RandomBBoxTransform')
__resized = dict(
    TopdownAffine=dict(input_size=codec['input_size']),
    GenerateTarget=dict(encoder=codec),
    RandomBBoxTransform=dict(shift_factor=__shift_factor *
                             _base_.codec.input_size[1] /
                             codec['input_size'][1]))
train_pipeline = [
    dict(t.to_dict(), **__resized.get(t.type, {}))
    for t in _base_.train_pipeline
]
val_pipeline = [
    dict(t.to_dict(), **__resized.get(t.type, {})) for t in _base_.val_pipeline
]
train_dataloader = dict(batch_size=24, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=24,
    dataset=dict(pipeline=[
        dict(t.to_dict(), **__resized.get(t.type, {}))
        for t in _base_.val_dataloader.dataset.pipeline
    ]))
test_dataloader = val_dataloader
