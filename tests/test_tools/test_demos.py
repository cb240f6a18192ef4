# Copyright (c) mmadc contributors. All rights reserved.
"""The pose and segmentation image demos, against mmpose's and mmseg's own
inference and drawing, on a written checkpoint."""
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np
import pytest
from conftest import PYTHON, REPO_ROOT
from demo_helpers import (POSE_ADC_CFG, POSE_CFG, SEG_ADC_CFG,
                          write_checkpoint, write_image)

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'demo'))
import pose_image_demo  # noqa: E402
import seg_image_demo  # noqa: E402

from mmadc.apis import DemoError  # noqa: E402

POSE_DEMO = osp.join(REPO_ROOT, 'tools', 'demo', 'pose_image_demo.py')


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpt')
    return dict(
        pose_adc=write_checkpoint(POSE_ADC_CFG, str(root / 'pose_adc.pth')),
        pose=write_checkpoint(POSE_CFG, str(root / 'pose.pth')),
        seg_adc=write_checkpoint(SEG_ADC_CFG, str(root / 'seg_adc.pth')))


def upstream_keypoints(config, checkpoint, img, boxes):
    """mmpose's own init_model + inference_topdown: the oracle."""
    from mmpose.apis import inference_topdown, init_model
    model = init_model(config, checkpoint, device='cpu')
    return [
        s.pred_instances.keypoints[0]
        for s in inference_topdown(model, img, boxes, 'xyxy')
    ]


def test_pose_demo_draws_the_upstream_keypoints(checkpoints, tmp_path):
    img = str(tmp_path / 'img.png')
    image = write_image(img)
    out = str(tmp_path / 'out.png')
    boxes = ['10,10,70,110', '90,20,150,100']
    pose_image_demo.main([
        img, POSE_ADC_CFG, checkpoints['pose_adc'], '--bboxes', *boxes,
        '--out-file', out, '--kpt-thr=-1e9', '--radius', '2'
    ])
    drawn = mmcv.imread(out)
    assert drawn.shape == image.shape
    box_arr = np.array([[float(v) for v in b.split(',')] for b in boxes])
    keypoints = np.concatenate(
        upstream_keypoints(POSE_ADC_CFG, checkpoints['pose_adc'], img,
                           box_arr))
    changed = np.any(drawn != image, axis=2)
    inside = [
        (int(round(y)), int(round(x))) for x, y in keypoints
        if 0 <= round(x) < image.shape[1] and 0 <= round(y) < image.shape[0]
    ]
    assert inside, 'no keypoint inside the image to check'
    assert all(changed[y, x] for y, x in inside)
    # nothing drawn away from the keypoints and the skeleton between them
    lo = np.floor(keypoints.min(axis=0)).astype(int) - 4
    hi = np.ceil(keypoints.max(axis=0)).astype(int) + 4
    away = np.ones_like(changed)
    away[max(lo[1], 0):max(hi[1], 0), max(lo[0], 0):max(hi[0], 0)] = False
    assert away.any() and not changed[away].any()


def test_pose_demo_folder_with_detection_file(data_workspace, checkpoints,
                                              tmp_path):
    coco = osp.join(data_workspace, 'data', 'synthetic_coco')
    val = osp.join(coco, 'val2017')
    det_file = osp.join(coco, 'person_detection_results',
                        'COCO_val2017_detections_AP_H_56_person.json')
    out_dir = str(tmp_path / 'vis')
    written = pose_image_demo.main([
        val, POSE_ADC_CFG, checkpoints['pose_adc'], '--det-file', det_file,
        '--det-score-thr', '0', '--kpt-thr=-1e9', '--out-dir', out_dir
    ])
    names = sorted(n for n in __import__('os').listdir(val))
    assert [osp.basename(p) for p in written] == names
    for name in names:
        src = mmcv.imread(osp.join(val, name))
        assert mmcv.imread(osp.join(out_dir, name)).shape == src.shape
    # refuses to replace the outputs of that run
    with pytest.raises(DemoError, match='exists.*--overwrite'):
        pose_image_demo.main([
            val, POSE_ADC_CFG, checkpoints['pose_adc'], '--det-file', det_file,
            '--out-dir', out_dir
        ])


def test_seg_demo_blends_the_upstream_prediction(checkpoints, tmp_path):
    from mmseg.apis import inference_model, init_model
    from mmseg.utils import get_palette
    img = str(tmp_path / 'img.png')
    image = write_image(img, 96, 128)
    out = str(tmp_path / 'out.png')
    seg_image_demo.main(
        [img, SEG_ADC_CFG, checkpoints['seg_adc'], '--out-file', out])
    drawn = mmcv.imread(out)
    assert drawn.shape == image.shape
    model = init_model(SEG_ADC_CFG, checkpoints['seg_adc'], device='cpu')
    pred = inference_model(model, image).pred_sem_seg.data[0].numpy()
    palette = np.array(get_palette('cityscapes'), dtype=np.float64)
    expected_rgb = 0.5 * image[..., ::-1] + 0.5 * palette[pred]
    assert np.abs(drawn[..., ::-1] - expected_rgb).max() <= 1.0
    assert np.any(drawn != image, axis=2).mean() > 0.5


def test_demo_errors(checkpoints, tmp_path):
    img = str(tmp_path / 'img.png')
    write_image(img)
    out = str(tmp_path / 'out.png')
    with pytest.raises(DemoError, match='does not fit the model of'):
        pose_image_demo.main(
            [img, POSE_ADC_CFG, checkpoints['pose'], '--out-file', out])
    with pytest.raises(DemoError, match='outside the image'):
        pose_image_demo.main([
            img, POSE_ADC_CFG, checkpoints['pose_adc'], '--bboxes',
            '200,10,260,100', '--out-file', out
        ])
    with pytest.raises(DemoError, match='X1,Y1,X2,Y2'):
        pose_image_demo.main([
            img, POSE_ADC_CFG, checkpoints['pose_adc'], '--bboxes', '1,2,3',
            '--out-file', out
        ])
    bad = tmp_path / 'bad.png'
    bad.write_text('not an image')
    with pytest.raises(DemoError, match='cannot read'):
        seg_image_demo.main(
            [str(bad), SEG_ADC_CFG, checkpoints['seg_adc'], '--out-file', out])
    assert not osp.exists(out)
    mine = tmp_path / 'mine.png'
    mine.write_bytes(b'user data')
    with pytest.raises(DemoError, match='exists'):
        seg_image_demo.main([
            img, SEG_ADC_CFG, checkpoints['seg_adc'], '--out-file',
            str(mine)
        ])
    assert mine.read_bytes() == b'user data'


def test_demo_cli_error_is_one_line(checkpoints, tmp_path):
    img = str(tmp_path / 'img.png')
    write_image(img)
    proc = subprocess.run([
        PYTHON, POSE_DEMO, img, POSE_ADC_CFG, checkpoints['pose'],
        '--out-file',
        str(tmp_path / 'out.png')
    ],
                          capture_output=True,
                          text=True,
                          cwd=REPO_ROOT,
                          timeout=300)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('pose_image_demo.py: error: checkpoint: ')
    assert 'does not fit' in last


def test_demo_output_and_config_mistakes(checkpoints, tmp_path):
    """Refused before the model is built, one line naming the argument:
    an output OpenCV has no encoder for, an --out-dir that is a file, and
    a config of the other task (upstream: cv2.error, FileExistsError,
    TypeError from the model's constructor)."""
    img = str(tmp_path / 'img.png')
    write_image(img)
    taken = tmp_path / 'taken'
    taken.write_text('mine')
    out = str(tmp_path / 'out.png')
    images = 'expected one of .jpg, .jpeg, .png, .bmp'
    cases = [
        (pose_image_demo, [
            img, POSE_ADC_CFG, checkpoints['pose_adc'], '--out-file',
            str(tmp_path / 'x.txt')
        ], f'--out-file: ".*x.txt" has the extension ".txt", {images}'),
        (seg_image_demo, [
            img, SEG_ADC_CFG, checkpoints['seg_adc'], '--out-file',
            str(tmp_path / 'noext')
        ], f'--out-file: ".*noext" has no extension, {images}'),
        (pose_image_demo,
         [img, POSE_ADC_CFG, checkpoints['pose_adc'], '--out-dir',
          str(taken)], f'--out-dir: "{taken}" is a file, expected a folder'),
        (seg_image_demo, [
            img, SEG_ADC_CFG, checkpoints['seg_adc'], '--out-file',
            str(taken / 'out.png')
        ], f'--out-file: "{taken}" is a file, expected a folder'),
        (pose_image_demo,
         [img, SEG_ADC_CFG, checkpoints['seg_adc'], '--out-file',
          out], f'config: "{SEG_ADC_CFG}" is a segmentation config; use '
         'tools/demo/seg_image_demo.py'),
        (seg_image_demo,
         [img, POSE_ADC_CFG, checkpoints['pose_adc'], '--out-file',
          out], f'config: "{POSE_ADC_CFG}" is a pose estimation config; use '
         'tools/demo/pose_image_demo.py'),
    ]
    for demo, argv, pattern in cases:
        with pytest.raises(DemoError, match=pattern) as info:
            demo.main(argv)
        assert '\n' not in str(info.value)
    assert taken.read_text() == 'mine'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['img.png', 'taken']


def test_demo_cli_output_mistake_is_one_line(checkpoints, tmp_path):
    img = str(tmp_path / 'img.png')
    write_image(img)
    proc = subprocess.run([
        PYTHON,
        osp.join(REPO_ROOT, 'tools', 'demo', 'seg_image_demo.py'), img,
        SEG_ADC_CFG, checkpoints['seg_adc'], '--out-file',
        str(tmp_path / 'x.txt')
    ],
                          capture_output=True,
                          text=True,
                          cwd=REPO_ROOT,
                          timeout=300)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('seg_image_demo.py: error: --out-file: ')


@pytest.mark.parametrize('with_labels', [False, True])
def test_seg_demo_draws_a_one_pixel_image(checkpoints, tmp_path, with_labels):
    """mmseg's drawing indexed the image with a 1x1 label tensor, which
    NumPy takes as the integer index 1 (IndexError)."""
    img = str(tmp_path / 'img.png')
    mmcv.imwrite(np.full((1, 1, 3), 100, np.uint8), img)
    out = str(tmp_path / 'out.png')
    seg_image_demo.main([
        img, SEG_ADC_CFG, checkpoints['seg_adc'], '--out-file', out,
        *(['--with-labels'] if with_labels else [])
    ])
    assert mmcv.imread(out).shape == (1, 1, 3)
