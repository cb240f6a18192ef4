# The paper's HRNet recipe: the SimpleBaseline recipe (simplebaseline_140e_coco
# .py: batch, optimiser, augmentation, codec, test) with HRNet-W32, 256x192,
# trained 210 epochs, lr x0.1 at epochs 170 and 200 (the schedule of the HRNet
# reference code the paper points to), no warm-up.
_base_ = ['./simplebaseline_140e_coco.py']

train_cfg = dict(max_epochs=210)
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=210,
        milestones=[170, 200],
        gamma=0.1,
        by_epoch=True)
]

# The model of mmpose's td-hm_hrnet-w32_8xb64-210e_coco-256x192.py: HRNet-W32
# from mmpose's ImageNet checkpoint, the heatmap head on its 32-channel
# high-resolution branch without deconvolutions.
model = dict(
    backbone=dict(
        _delete_=True,
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(4, ),
                num_channels=(64, )),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(4, 4),
                num_channels=(32, 64)),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(32, 64, 128)),
            stage4=dict(
                num_modules=3,
                num_branches=4,
                block='BASIC',
                num_blocks=(4, 4, 4, 4),
                num_channels=(32, 64, 128, 256))),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w32-36af842e.pth'),
    ),
    head=dict(in_channels=32, deconv_out_channels=None))
