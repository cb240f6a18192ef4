# SimpleBaseline ResNet-18 on the generated COCO-keypoint set: the demo's
# baseline, sized to train on a CPU in a few minutes.
#
# Data: python tools/dataset_generators/generate_synthetic_coco.py
#       data/synthetic_coco   (tools/run_demo.py does this for you)
# Train: mim train mmpose \
#        configs/demo/td-hm_res18_1xb32-40e_synthetic-coco-128x96.py
#    or: python tools/train.py \
#        configs/demo/td-hm_res18_1xb32-40e_synthetic-coco-128x96.py
_base_ = ['mmpose::_base_/default_runtime.py']

custom_imports = dict(imports=['mmadc'], allow_failed_imports=False)

# runtime: short schedule for a CPU (about 6 s an epoch on 2 cores);
# COCO AP every 10 epochs
train_cfg = dict(max_epochs=40, val_interval=10)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
# the paper's step schedule, compressed: x0.1 for the last 20% of epochs
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=40,
        milestones=[32],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='CheckpointHook',
        interval=10,
        save_best='coco/AP',
        rule='greater'))
log_processor = dict(window_size=10)
# single-process CPU runs and gloo for multi-process CPU runs
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
# checkpoints record the random states, so that a resumed run draws the same
# augmentations as an uninterrupted one (after mmpose's SyncBuffersHook)
custom_hooks = _base_.custom_hooks + [dict(type='RandomStateHook')]

# codec settings
codec = dict(
    type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)

# model settings
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18),
    head=dict(
        type='HeatmapHead',
        in_channels=512,
        out_channels=17,
        deconv_out_channels=(128, 128, 128),
        deconv_kernel_sizes=(4, 4, 4),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=codec),
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True))

# base dataset settings
dataset_type = 'CocoDataset'
data_mode = 'topdown'
data_root = 'data/synthetic_coco/'

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/person_keypoints_val2017.json',
        bbox_file=data_root + 'person_detection_results/'
        'COCO_val2017_detections_AP_H_56_person.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/person_keypoints_val2017.json')
test_evaluator = val_evaluator
