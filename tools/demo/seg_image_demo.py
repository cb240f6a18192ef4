# Copyright (c) mmadc contributors. All rights reserved.
"""Blend a segmentation model's prediction over images.

Through mmseg's own API (``init_model``, ``inference_model`` and
``show_result_pyplot``'s ``SegLocalVisualizer``), in the palette the
checkpoint records (Cityscapes' for the configs here, and when a checkpoint
records none)::

    python tools/demo/seg_image_demo.py IMG CONFIG CHECKPOINT \\
        --out-file OUT.png        # or a folder IMG with --out-dir DIR

Existing outputs are kept unless ``--overwrite`` is given.
"""
import argparse
import sys

import mmcv
from mmengine.config import DictAction

from mmadc.apis import init_seg_model, plan_outputs, read_image
from mmadc.utils.cli import run_cli


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('img', help='an image file or a folder of images')
    parser.add_argument('config', help='an mmseg config')
    parser.add_argument('checkpoint', help='a checkpoint of that config')
    parser.add_argument('--out-file', help='the drawn image (one input)')
    parser.add_argument('--out-dir', help='folder of the drawn images')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace existing output files (default: refuse)')
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='opacity of the class colours, in (0, 1] (%(default)s)')
    parser.add_argument(
        '--with-labels',
        action='store_true',
        help='write the class names on the regions')
    parser.add_argument('--device', default='cpu', help='e.g. cuda:0')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if not 0 < args.opacity <= 1:
        parser.error(f'--opacity must be in (0, 1], got {args.opacity}')
    return args


def main(argv=None) -> list:
    from mmengine.utils import ProgressBar
    from mmseg.apis import inference_model, show_result_pyplot

    args = parse_args(argv)
    pairs = plan_outputs(
        args.img, args.out_file, args.out_dir, args.overwrite,
        make_dirs=True)  # mmcv.imwrite makes the folders
    model = init_seg_model(args.config, args.checkpoint, args.device,
                           args.cfg_options)
    written = []
    bar = ProgressBar(len(pairs))
    for path, out in pairs:
        image = read_image(path)
        result = inference_model(model, image)
        # mmseg's visualizer indexes the image with the label map; NumPy
        # takes a one-element tensor as an integer index (IndexError for a
        # 1x1 image), an array as the boolean mask it is
        result.pred_sem_seg.data = result.pred_sem_seg.data.cpu().numpy()
        show_result_pyplot(
            model,
            mmcv.bgr2rgb(image),
            result,
            opacity=args.opacity,
            draw_gt=False,
            show=False,
            with_labels=args.with_labels,
            out_file=out)
        written.append(out)
        bar.update()
    sys.stdout.write('\n')
    print(f'wrote {len(written)} image(s): '
          f'{written[0] if len(written) == 1 else args.out_dir}')
    return written


if __name__ == '__main__':
    run_cli(main)
