# Copyright (c) mmadc contributors. All rights reserved.
"""Draw where ADC looks: each stage's sampling footprint over the image.

For every person (pose) or for the image (segmentation) and for each ADC
stage (its last ADC layer), the picture shows the k x k taps of a few
dilation groups, centred at a few points (the person's best-scoring
predicted keypoints; a 3 x 3 grid for segmentation), at spacing
``base dilation x rate`` on the layer's input feature map mapped back to
image pixels through that feature map's total stride (the receptive field
of Eq. 8, see ``mmadc/models``' ``receptive_field``). The drawn groups are
the ones with the smallest, the median and the largest rate of that sample;
beside each footprint is the histogram of all the layer's rates. Several
persons give one panel (column pair) each, side by side, so one picture
shows whether the rates grow with the person's size (the paper's Fig. 6)::

    python tools/analysis/visualize_rates.py IMG CONFIG CHECKPOINT \\
        [--bboxes X1,Y1,X2,Y2 ...] --out-file OUT.png

Pose models run without flip test here, so the rates drawn are those of the
one forward of each person's crop. A footprint is drawn around the point
itself; the layer's output grid places the unit nearest to it up to half a
stride away.
"""
import argparse
import functools
import os.path as osp
from typing import Dict, List

import numpy as np
import torch
from mmengine.config import DictAction

from mmadc.apis import (DemoError, check_boxes_inside, init_pose_model,
                        init_seg_model, parse_boxes, plan_outputs, read_image,
                        run_cli_main)
from mmadc.models import utils as adc_layers

#: Colours of the drawn groups, smallest rate first.
GROUP_COLOURS = ('#00bfff', '#ffd700', '#ff1493', '#7cfc00', '#ff8c00')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('img', help='an image file')
    parser.add_argument('config', help='an mmpose or mmseg config with ADC')
    parser.add_argument('checkpoint', help='a checkpoint of that config')
    parser.add_argument(
        '--bboxes',
        nargs='+',
        metavar='X1,Y1,X2,Y2',
        help='pose: person boxes in pixels (default: the whole image)')
    parser.add_argument('--out-file', required=True, help='the PNG')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing output file (default: refuse)')
    parser.add_argument(
        '--groups',
        type=int,
        default=3,
        help='dilation groups drawn per layer (%(default)s: smallest, '
        'median and largest rate)')
    parser.add_argument(
        '--points',
        type=int,
        default=3,
        help='pose: keypoints per person (best scores first) '
        '(%(default)s)')
    parser.add_argument('--device', default='cpu', help='e.g. cuda:0')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    args = parser.parse_args(argv)
    # one colour per drawn group; points are bounded to keep a panel legible
    bounds = dict(groups=len(GROUP_COLOURS), points=len(GROUP_COLOURS) * 10)
    for name, most in bounds.items():
        value = getattr(args, name)
        if not 1 <= value <= most:
            parser.error(f'--{name} must be in [1, {most}], got {value}')
    return args


class FootprintRecorder:
    """Forward hooks that keep, per ADC layer, the rates ``(N, g)`` and the
    input feature map's spatial size of the first forward, and the
    backbone's input size."""

    def __init__(self, model: torch.nn.Module, layers: dict) -> None:
        self.records: Dict[str, dict] = {}
        self.input_size = None
        self._handles = [
            layer.register_forward_hook(functools.partial(self._layer, name))
            for name, layer in layers.items()
        ]
        self._handles.append(
            model.backbone.register_forward_pre_hook(self._backbone))

    def _backbone(self, module, args) -> None:
        if self.input_size is None:
            self.input_size = tuple(args[0].shape[-2:])

    def _layer(self, name: str, module, args, output) -> None:
        if name not in self.records:
            self.records[name] = dict(
                rates=module.last_rates.detach().float().cpu().numpy(),
                feature_size=tuple(args[0].shape[-2:]))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def require_adc_layers(model: torch.nn.Module, config: str) -> dict:
    """The model's ADC layers; a :class:`DemoError` if it has none."""
    try:
        return adc_layers.require_adc_layers(model, config)
    except ValueError as err:
        raise DemoError(str(err)) from None


def stage_layers(layers: dict) -> Dict[str, str]:
    """Stage name to its last ADC layer, in model order."""
    last: Dict[str, str] = {}
    for name in layers:
        last[adc_layers.layer_stage(name)] = name
    return last


def pick_groups(rates: np.ndarray, num: int) -> List[int]:
    """Groups with evenly spaced ranks of rate: smallest .. largest."""
    order = np.argsort(rates, kind='stable')
    ranks = np.unique(
        np.linspace(0,
                    len(rates) - 1, min(num, len(rates))).round().astype(int))
    return [int(order[r]) for r in ranks]


def footprint_taps(centre, spacing, kernel_size) -> np.ndarray:
    """``(kh * kw, 2)`` tap positions ``x, y`` around ``centre`` at
    ``spacing = (sx, sy)`` pixels."""
    kh, kw = kernel_size
    ys = (np.arange(kh) - kh // 2) * spacing[1] + centre[1]
    xs = (np.arange(kw) - kw // 2) * spacing[0] + centre[0]
    grid_x, grid_y = np.meshgrid(xs, ys)
    return np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)


def describe_stages(recorder: FootprintRecorder, layers: dict, sample: int,
                    pixel_scale, points: np.ndarray,
                    num_groups: int) -> List[dict]:
    """Per stage: the layer, its stride, the drawn groups and their taps
    (image pixels) for one sample."""
    stages = []
    in_h, in_w = recorder.input_size
    for stage, name in stage_layers(layers).items():
        layer, record = layers[name], recorder.records[name]
        feat_h, feat_w = record['feature_size']
        stride = (in_w / feat_w, in_h / feat_h)
        rates = record['rates'][sample]
        kernel = tuple(layer.kernel_size)
        dil_h, dil_w = layer.dilation
        groups = []
        for group in pick_groups(rates, num_groups):
            rate = float(rates[group])
            spacing = (dil_w * rate * stride[0] * pixel_scale[0],
                       dil_h * rate * stride[1] * pixel_scale[1])
            groups.append(
                dict(
                    group=group,
                    rate=rate,
                    spacing_px=spacing,
                    taps=[footprint_taps(p, spacing, kernel) for p in points]))
        stages.append(
            dict(
                stage=stage,
                layer=name,
                title=adc_layers.adc_layer_title(name),
                stride=stride,
                dilation=(dil_h, dil_w),
                kernel_size=kernel,
                rates=rates,
                groups=groups))
    return stages


def pose_panels(args, image: np.ndarray) -> List[dict]:
    from mmpose.apis import inference_topdown
    model = init_pose_model(args.config, args.checkpoint, args.device,
                            args.cfg_options)
    model.test_cfg['flip_test'] = False  # one forward per person
    layers = require_adc_layers(model, args.config)
    boxes = parse_boxes(args.bboxes)
    if boxes is not None:
        check_boxes_inside(boxes, image, args.img)
    recorder = FootprintRecorder(model, layers)
    try:
        with torch.no_grad():
            samples = inference_topdown(model, image, boxes, 'xyxy')
    finally:
        recorder.remove()
    panels = []
    for i, sample in enumerate(samples):
        meta = sample.metainfo
        centre = np.asarray(meta['input_center'], dtype=float)
        scale = np.asarray(meta['input_scale'], dtype=float)
        pixel_scale = scale / np.asarray(meta['input_size'], dtype=float)
        keypoints = sample.pred_instances.keypoints[0]
        scores = sample.pred_instances.keypoint_scores[0]
        points = keypoints[np.argsort(-scores, kind='stable')[:args.points]]
        x1, y1, x2, y2 = sample.gt_instances.bboxes[0]
        panels.append(
            dict(
                title=f'person {i + 1}: box {x2 - x1:.0f}x{y2 - y1:.0f} px',
                view=(centre - scale / 2, centre + scale / 2),
                points=points,
                keypoints=keypoints[scores > 0.3],
                stages=describe_stages(recorder, layers, i, pixel_scale,
                                       points, args.groups)))
    return panels


def seg_panels(args, image: np.ndarray) -> List[dict]:
    from mmseg.apis import inference_model
    if args.bboxes:
        raise DemoError('--bboxes: only for pose models; a segmentation '
                        'model looks at the whole image')
    model = init_seg_model(args.config, args.checkpoint, args.device,
                           args.cfg_options)
    layers = require_adc_layers(model, args.config)
    recorder = FootprintRecorder(model, layers)
    try:
        with torch.no_grad():
            sample = inference_model(model, image)
    finally:
        recorder.remove()
    if len(recorder.records[next(iter(layers))]['rates']) != 1:
        raise DemoError('the model ran several forwards (sliding window); '
                        "use --cfg-options model.test_cfg.mode=whole")
    w_scale, h_scale = sample.metainfo['scale_factor'][:2]
    height, width = image.shape[:2]
    points = np.array([(width * fx, height * fy) for fy in (0.25, .5, .75)
                       for fx in (0.25, .5, .75)])
    return [
        dict(
            title=f'image {width}x{height} px',
            view=(np.zeros(2), np.array([width, height], dtype=float)),
            points=points,
            keypoints=np.zeros((0, 2)),
            stages=describe_stages(recorder, layers, 0,
                                   (1 / w_scale, 1 / h_scale), points,
                                   args.groups))
    ]


def draw(panels: List[dict], image: np.ndarray, out_file: str) -> None:
    """One column pair per panel (footprints, rate histogram), one row per
    stage."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rgb = image[..., ::-1]
    rows = len(panels[0]['stages'])
    fig, axes = plt.subplots(
        rows,
        2 * len(panels),
        figsize=(4.2 * len(panels), 2.2 * rows),
        gridspec_kw=dict(width_ratios=[1.3, 1] * len(panels)),
        squeeze=False)
    for p, panel in enumerate(panels):
        (vx1, vy1), (vx2, vy2) = panel['view']
        for r, stage in enumerate(panel['stages']):
            ax, hist = axes[r, 2 * p], axes[r, 2 * p + 1]
            ax.imshow(rgb)
            ax.set_xlim(vx1, vx2)
            ax.set_ylim(vy2, vy1)
            ax.set_xticks([])
            ax.set_yticks([])
            if len(panel['keypoints']):
                ax.scatter(*panel['keypoints'].T, s=4, c='white')
            for g, group in enumerate(stage['groups']):
                colour = GROUP_COLOURS[g]
                for taps in group['taps']:
                    ax.scatter(
                        *taps.T, s=6, c=colour, marker='s', linewidths=0)
                    lo, hi = taps.min(axis=0), taps.max(axis=0)
                    ax.add_patch(
                        plt.Rectangle(
                            lo, *(hi - lo), fill=False, lw=0.6, ec=colour))
            ax.set_title(
                f'{stage["title"]} (stride {stage["stride"][0]:g})',
                fontsize=7)
            if r == 0:
                ax.set_title(
                    f'{panel["title"]}\n{stage["title"]} '
                    f'(stride {stage["stride"][0]:g})',
                    fontsize=7)
            hist.hist(stage['rates'], bins=20, color='#888888')
            for g, group in enumerate(stage['groups']):
                hist.axvline(group['rate'], color=GROUP_COLOURS[g], lw=1.2)
            hist.set_title(
                f'rates (mean {np.mean(stage["rates"]):.2f})', fontsize=7)
            hist.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(out_file, dpi=72)
    plt.close(fig)


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    if not args.out_file.lower().endswith('.png'):
        raise DemoError(f'--out-file: "{args.out_file}" must be a .png')
    if osp.isdir(args.img):
        raise DemoError(f'img: "{args.img}" is a folder; give one image')
    ((_, out_file), ) = plan_outputs(args.img, args.out_file, None,
                                     args.overwrite)
    image = read_image(args.img)
    from mmengine.config import Config
    if not osp.isfile(args.config):
        raise DemoError(f'config: "{args.config}" does not exist')
    scope = Config.fromfile(args.config).get('default_scope')
    if scope == 'mmpose':
        panels = pose_panels(args, image)
    elif scope == 'mmseg':
        panels = seg_panels(args, image)
    else:
        raise DemoError(f'config: "{args.config}" is neither an mmpose nor '
                        f'an mmseg config (default_scope {scope!r})')
    draw(panels, image, out_file)
    print(f'wrote {out_file}: {len(panels)} panel(s), '
          f'{len(panels[0]["stages"])} ADC stage(s)')
    return panels


if __name__ == '__main__':
    run_cli_main(main)
