# Copyright (c) mmadc contributors. All rights reserved.
"""ScaleResolution (mmadc.datasets.transforms): the image resampled by s,
every coordinate field mapped with the pixels, so that a later TopdownAffine
crops the same content at s times the resolution."""
import numpy as np
import pytest

from mmadc.datasets import ScaleResolution


def pose_results(img, bbox):
    """A top-down result dict as mmpose's loading and GetBBoxCenterScale
    leave it."""
    x1, y1, x2, y2 = bbox
    keypoints = np.array([[[x1 + 3., y1 + 5.], [x2 - 2.5, y2 - 7.25]]],
                         np.float32)
    return dict(
        img=img,
        img_shape=img.shape[:2],
        bbox=np.array([bbox], np.float32),
        bbox_center=np.array([[(x1 + x2) / 2, (y1 + y2) / 2]], np.float32),
        bbox_scale=np.array([[x2 - x1, y2 - y1]], np.float32),
        keypoints=keypoints,
        keypoints_visible=np.ones((1, 2), np.float32))


@pytest.mark.parametrize('scale', [0.25, 0.5, 2., 3.])
def test_scale_resolution_maps_coordinates_with_the_pixels(scale):
    img = np.zeros((96, 160, 3), np.uint8)
    before = pose_results(img, (8., 16., 56., 80.))
    after = ScaleResolution(scale)({
        k:
        np.copy(v) if isinstance(v, np.ndarray) else v
        for k, v in before.items()
    })
    h, w = round(96 * scale), round(160 * scale)
    assert after['img'].shape == (h, w, 3)
    assert after['img_shape'] == (h, w)

    # cv2.resize samples output pixel u at input (u + 0.5) / s - 0.5
    def mapped(x, factor):
        return (x + 0.5) * factor - 0.5

    sx, sy = w / 160, h / 96
    np.testing.assert_allclose(
        after['bbox'],
        [[mapped(8, sx),
          mapped(16, sy),
          mapped(56, sx),
          mapped(80, sy)]],
        rtol=1e-6)
    np.testing.assert_allclose(
        after['bbox_scale'], [[48 * sx, 64 * sy]], rtol=1e-6)
    np.testing.assert_allclose(
        after['bbox_center'], [[mapped(32, sx), mapped(48, sy)]], rtol=1e-6)
    np.testing.assert_allclose(
        after['keypoints'][..., 0],
        mapped(before['keypoints'][..., 0], sx),
        rtol=1e-6)
    np.testing.assert_allclose(
        after['keypoints'][..., 1],
        mapped(before['keypoints'][..., 1], sy),
        rtol=1e-6)
    for key in ('bbox', 'bbox_center', 'bbox_scale', 'keypoints'):
        assert after[key].dtype == np.float32, key
    # the box's middle is the centre, and back by 1/s is where it was
    np.testing.assert_allclose(
        after['bbox'][0].reshape(2, 2).mean(0),
        after['bbox_center'][0],
        rtol=1e-6)
    back = ScaleResolution(1 / scale)(dict(after, img=img[:h, :w]))
    if back['img'].shape[:2] == (96, 160):  # no rounding of the size
        np.testing.assert_allclose(back['bbox'], before['bbox'], atol=1e-4)


def test_scale_resolution_keeps_the_crop_content():
    """Through mmpose's TopdownAffine: the keypoints land on the same crop
    pixels at every scale, and a smooth image gives the same crop."""
    from mmpose.datasets.transforms import TopdownAffine
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float64)
    smooth = 128 + 60 * np.sin(xx / 23.) * np.cos(yy / 31.)
    img = np.repeat(np.round(smooth)[..., None], 3, 2).astype(np.uint8)
    affine = TopdownAffine(input_size=(48, 64))
    crops, keypoints = {}, {}
    for scale in (0.5, 1., 2.):
        res = pose_results(img.copy(), (100., 50., 180., 210.))
        res = affine(ScaleResolution(scale)(res))
        crops[scale] = res['img'].astype(np.float64)
        keypoints[scale] = res['transformed_keypoints']
    for scale in (0.5, 2.):
        np.testing.assert_allclose(keypoints[scale], keypoints[1.], atol=1e-3)
        # bilinear and area resampling of a smooth image: a fraction of a
        # grey level apart on average (the image spans 120 levels; x' = s x
        # instead of the pixel-centre mapping would be 0.4-0.7 apart)
        assert np.abs(crops[scale] - crops[1.]).mean() < 0.3
    assert ScaleResolution(1)(dict(img=img))['img'] is img


def test_scale_resolution_segmentation_fields():
    img = np.zeros((64, 128, 3), np.uint8)
    seg = (np.arange(128)[None, :] // 32 * np.ones((64, 1))).astype(np.uint8)
    res = ScaleResolution(0.5)(
        dict(
            img=img,
            img_shape=(64, 128),
            ori_shape=(32, 64),
            scale_factor=(2., 2.),
            gt_seg_map=seg,
            seg_fields=['gt_seg_map']))
    assert res['img'].shape == (32, 64, 3)
    assert res['gt_seg_map'].shape == (32, 64)
    # nearest neighbour: only the labels there were, in their places
    np.testing.assert_array_equal(res['gt_seg_map'][0], np.arange(64) // 16)
    assert res['scale_factor'] == (1., 1.)
    assert res['ori_shape'] == (32, 64)


@pytest.mark.parametrize('scale', [0, -1, float('nan'), float('inf'), True])
def test_scale_resolution_rejects_bad_scales(scale):
    with pytest.raises(ValueError, match='scale must be a finite number'):
        ScaleResolution(scale)
