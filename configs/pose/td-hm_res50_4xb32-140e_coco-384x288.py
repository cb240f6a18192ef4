# SimpleBaseline ResNet-50, 384x288, without ADC: the baseline of "Adaptive
# Dilated Convolution for Human Pose Estimation" (Luo et al.). The paper
# reports no 384x288 figures; compare with
# td-hm_res50-adc_4xb32-140e_coco-384x288.py.
#
# The recipe of td-hm_res50_4xb32-140e_coco-256x192.py at 384x288 inputs.
_base_ = ['./td-hm_res50_4xb32-140e_coco-256x192.py']

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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(pipeline=[
        dict(t.to_dict(), **__resized.get(t.type, {}))
        for t in _base_.val_dataloader.dataset.pipeline
    ]))
test_dataloader = val_dataloader
