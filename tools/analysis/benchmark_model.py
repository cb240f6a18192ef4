# Copyright (c) mmadc contributors. All rights reserved.
"""Benchmark full training steps of pose models with and without ADC.

Builds each config's model with mmpose's registry (random weights: the
ImageNet ``init_cfg`` is dropped, nothing is downloaded) and its optimizer
wrapper, then times ``model.train_step`` (data preprocessor, forward, loss,
backward and optimizer step) on a synthetic batch of the config's input size
with random target heatmaps. Reports the median step time, images per
second and the peak memory one step adds (CUDA: peak allocated; CPU: peak
resident set size, see :func:`mmadc.analysis.benchmarking.peak_memory_mb`),
plus each model's ratios to its baseline: the closest config before it
whose backbone is not an ADC one (SimpleBaseline-ResNet-50 for ResNet-50-ADC,
HRNet-W32 for HRNet-W32-ADC by default), and to the first config.

Examples::

    # SimpleBaseline-ResNet-50 and HRNet-W32 at 256x192, without and with
    # ADC, batch 8, on this machine's CPU
    python tools/analysis/benchmark_model.py --threads 2
    # GPU, batch 64, bfloat16 autocast
    python tools/analysis/benchmark_model.py --device cuda --batch 64 --amp
"""
import argparse
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData

from mmadc.analysis.benchmarking import (add_common_arguments, emit_report,
                                         peak_memory_mb, selected_kernels,
                                         time_interleaved_ms)
from mmadc.ops.native_cpu import gemm_library_in_use, native_cpu_available

RESNET50_CONFIGS = [
    'configs/pose/td-hm_res50_4xb32-140e_coco-256x192.py',
    'configs/pose/td-hm_res50-adc_4xb32-140e_coco-256x192.py',
]
HRNET_W32_CONFIGS = [
    'configs/pose/td-hm_hrnet-w32_4xb32-210e_coco-256x192.py',
    'configs/pose/td-hm_hrnet-w32-adc_4xb32-210e_coco-256x192.py',
]
DEFAULT_CONFIGS = RESNET50_CONFIGS + HRNET_W32_CONFIGS


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time full training steps of pose models.')
    parser.add_argument(
        'configs',
        nargs='*',
        default=DEFAULT_CONFIGS,
        help='top-down heatmap configs; an ADC model is compared with the '
        'closest non-ADC config before it (default: SimpleBaseline-ResNet-50 '
        'and HRNet-W32, each without and with ADC, 256x192)')
    add_common_arguments(parser)
    parser.add_argument(
        '--amp',
        action='store_true',
        help='bfloat16 autocast (AmpOptimWrapper) instead of float32')
    parser.add_argument(
        '--steps', type=int, default=5, help='timed steps per model')
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed steps per model')
    return parser.parse_args(argv)


def build_model(cfg: Config, device: torch.device, amp: bool):
    """The config's model (random init) and optimizer wrapper."""
    from mmpose.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    model_cfg = cfg.model.copy()
    model_cfg.backbone.pop('init_cfg', None)  # no download, random weights
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(device).train()
    optim_cfg = cfg.optim_wrapper.copy()
    if amp:
        optim_cfg.update(type='AmpOptimWrapper', dtype='bfloat16')
    return model, build_optim_wrapper(model, optim_cfg)


def synthetic_batch(cfg: Config, batch: int, gen: torch.Generator) -> dict:
    """A batch of random images and target heatmaps of the config's sizes."""
    from mmpose.structures import PoseDataSample
    width, height = cfg.codec['input_size']
    hm_width, hm_height = cfg.codec['heatmap_size']
    keypoints = cfg.model.head.out_channels
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(
            torch.randint(
                0, 256, (3, height, width), generator=gen, dtype=torch.uint8))
        sample = PoseDataSample(
            gt_fields=PixelData(
                heatmaps=torch.rand(
                    keypoints, hm_height, hm_width, generator=gen)),
            gt_instance_labels=InstanceData(
                keypoint_weights=torch.ones(1, keypoints)))
        sample.set_metainfo(
            dict(
                input_size=(width, height),
                heatmap_size=(hm_width, hm_height)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def benchmark_config(path: str, args: argparse.Namespace) -> dict:
    cfg = Config.fromfile(path)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model, optim_wrapper = build_model(cfg, device, args.amp)
    data = synthetic_batch(cfg, args.batch,
                           torch.Generator().manual_seed(args.seed))

    def step():
        model.train_step(data, optim_wrapper)

    step_s = time_interleaved_ms({'step': step}, device, args.steps,
                                 args.warmup)['step'] / 1e3
    return dict(
        config=path,
        backbone=cfg.model.backbone.type,
        step_ms=step_s * 1e3,
        images_per_s=args.batch / step_s,
        memory_mb=peak_memory_mb(step, device))


def compare_to_baselines(results: List[dict]) -> None:
    """Add each result's ratios to its baseline (the closest result before
    it, itself included, whose backbone is not an ADC one; the first if
    none) and to the first result, and name its baseline."""
    first = baseline = results[0]
    for r in results:
        if not r['backbone'].endswith('ADC'):
            baseline = r
        r['baseline'] = baseline['config']
        for name, base in (('first', first), ('baseline', baseline)):
            r[f'throughput_vs_{name}'] = (
                r['images_per_s'] / base['images_per_s'])
            r[f'memory_vs_{name}'] = (None if r['memory_mb'] is None
                                      or not base['memory_mb'] else
                                      r['memory_mb'] / base['memory_mb'])


def benchmark(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda given but CUDA is not available')
    if args.amp and args.device != 'cuda':
        # MMEngine's AmpOptimWrapper asserts a GPU (or NPU/MLU) is there
        raise SystemExit(f'--amp needs --device cuda (AmpOptimWrapper does '
                         f'not train on {args.device}), got --device '
                         f'{args.device}')
    # keep init_weights' per-parameter report off stdout (and --json)
    MMLogger.get_instance('mmengine', log_level='WARNING')
    if args.steps < 1:
        raise SystemExit(f'--steps must be >= 1, got {args.steps}')
    with selected_kernels(args):
        results = [benchmark_config(path, args) for path in args.configs]
        gemm = gemm_library_in_use()
    compare_to_baselines(results)
    device = (
        torch.cuda.get_device_name()
        if args.device == 'cuda' else f'cpu x{torch.get_num_threads()}')
    return dict(
        setup=dict(
            batch=args.batch,
            device=device,
            amp=args.amp,
            steps=args.steps,
            warmup=args.warmup,
            impl=args.impl,
            native_cpu_kernel=native_cpu_available(),
            gemm=gemm,
            torch=torch.__version__),
        results=results)


def print_table(report: dict) -> None:
    setup = report['setup']
    print(f"device={setup['device']} batch={setup['batch']} "
          f"amp={setup['amp']} impl={setup['impl']} (native CPU kernel "
          f"built: {setup['native_cpu_kernel']}, float32 GEMMs: "
          f"{setup['gemm']}) steps={setup['steps']} "
          f"(median) warmup={setup['warmup']}")
    header = (f"{'config':<58}{'step ms':>10}{'img/s':>9}{'vs base':>9}"
              f"{'peak MB':>9}{'vs base':>9}")
    print(header)
    print('-' * len(header))
    for r in report['results']:
        memory = '-' if r['memory_mb'] is None else f"{r['memory_mb']:.0f}"
        memory_ratio = ('-' if r['memory_vs_baseline'] is None else
                        f"{r['memory_vs_baseline']:.2f}")
        print(f"{r['config'].split('/')[-1]:<58}{r['step_ms']:>10.1f}"
              f"{r['images_per_s']:>9.2f}{r['throughput_vs_baseline']:>9.2f}"
              f'{memory:>9}{memory_ratio:>9}')


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    emit_report(benchmark(args), args.json, print_table)


if __name__ == '__main__':
    main()
