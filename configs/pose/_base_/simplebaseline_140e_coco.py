# The paper's recipe (Sec. IV-A of "Adaptive Dilated Convolution for Human
# Pose Estimation", Luo et al.) on top of mmpose's SimpleBaseline ResNet-50
# config, 256x192. Every pose baseline inherits it: the HRNet recipe
# (hrnet_210e_coco.py) changes the model and the schedule, the 384x288
# configs the input size, the ResNet-101/152 configs the depth.
#
# - batch: the paper trained on 4 GPUs and points to the HRNet reference code,
#   whose config of this model uses 32 images per GPU: 4 x 32 = 128 images per
#   iteration ("4xb32"). On other hardware keep 128 in total, or pass
#   --auto-scale-lr (base_batch_size=128).
# - Adam, lr 1e-3, 140 epochs, lr x0.1 at epochs 90 and 110, no warm-up.
# - augmentation: horizontal flip, half body (mmpose's RandomHalfBody
#   defaults: prob 0.3, >= 9 visible keypoints, as in the reference code),
#   rotation within +-30 deg, scale within 0.7-1.3, translation within
#   +-40 px (RandomBBoxTransform, see below).
# - test: person detection boxes COCO_val2017_detections_AP_H_56_person.json,
#   flip test (averaged heatmaps, shifted by one pixel), quarter-offset
#   decoding (MSRAHeatmap with unbiased=False, see the codec).
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_res50_8xb64-210e_coco-256x192.py'
]

custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)

# runtime: the paper's schedule
train_cfg = dict(max_epochs=140, val_interval=10)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
# replaces mmpose's [warm-up, MultiStepLR]: the paper has no warm-up
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=140,
        milestones=[90, 110],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=128)

# codec: mmpose's MSRAHeatmap with unbiased=False decodes with
# get_heatmap_maximum + refine_keypoints, i.e. the arg-max moved by a
# quarter pixel towards the higher neighbour along x and along y: the
# paper's "quarter offset in the direction from the highest response to
# the second-highest response" (unbiased=True would be DARK instead).
codec = dict(
    type='MSRAHeatmap',
    input_size=(192, 256),
    heatmap_size=(48, 64),
    sigma=2,
    unbiased=False)

model = dict(
    head=dict(decoder=codec),
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True))

# Translation: RandomBBoxTransform moves the box centre by shift_factor * (box
# w, box h) times a truncated normal in [-1, 1]. The crop is the box widened to
# the input's aspect ratio and resized to the input size (w, h), so a shift of
# f * box size moves the person by at most f * h input pixels vertically
# (f * w horizontally). Reading "+-40 px" in input pixels (the unit shared by
# persons of every size; mmpose shifts relative to the box) gives f = 40 / h:
# at most 40 px vertically, 30 px horizontally (w = 3/4 h at both sizes). The
# paper gives ranges only; the probabilities are mmpose's (shift 0.3, rotation
# 0.6 as in the reference code, scaling always). Rotation and scale are
# truncated normals within +-30 deg and 0.7-1.3.
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(
        type='RandomBBoxTransform',
        shift_factor=40 / codec['input_size'][1],
        shift_prob=0.3,
        scale_factor=(0.7, 1.3),
        scale_prob=1.0,
        rotate_factor=30.0,
        rotate_prob=0.6),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]

train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    dataset=dict(bbox_file='data/coco/person_detection_results/'
                 'COCO_val2017_detections_AP_H_56_person.json'))
test_dataloader = val_dataloader
