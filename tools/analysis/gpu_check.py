# Copyright (c) mmadc contributors. All rights reserved.
"""Check and measure ADC on one CUDA GPU in one command (a few minutes).

Prints a table and writes one JSON report with

* ``environment``: the device, its driver, CUDA, torch and triton versions;
* ``correctness``: every implementation (``reference``, ``triton``; the
  native kernel is CPU-only and reported as not applicable) against the
  float64 reference on the same GPU and against ``F.conv2d`` at rate 1,
  output and gradients, in float32 (TF32 off) and bfloat16 autocast, with
  relative errors (max absolute difference over the oracle's maximum);
* ``layers``: forward+backward times at the 3x3 shapes of
  SimpleBaseline-ResNet-50 and HRNet-W32 (256x192 input,
  ``tools/analysis/benchmark_adc.py``'s table, batch 32) of cuDNN's conv,
  ADC (each implementation) and ``torchvision.ops.deform_conv2d`` with the
  equivalent offsets, in float32 (TF32 off) and bfloat16 autocast,
  contiguous and channels_last: ratios to the conv (per-round medians) and
  the peak memory of each;
* ``training``: one training step of SimpleBaseline-ResNet-50 with and
  without ADC at batch 64 (images/s, peak memory), ADC through each
  implementation (``tools/analysis/benchmark_model.py``).

A section that would run past ``--budget-s`` is skipped and says so. Without
a GPU the command exits with a one-line error.

Example::

    python tools/analysis/gpu_check.py --out work_dirs/gpu_check.json
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Optional

import torch
import torch.nn.functional as F

from mmadc.analysis.benchmarking import median_ratio, time_rounds_ms
from mmadc.ops import (adaptive_dilated_conv2d, adc_implementation,
                       implementations)

# the shape table and layer cases, and the training steps, of the sibling
# benchmark tools
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import benchmark_adc  # noqa: E402 isort:skip
import benchmark_model  # noqa: E402 isort:skip

#: Implementations checked and timed (``auto`` is one of them).
CHECKED = ('reference', 'triton')

#: Relative error that passes, per dtype name.
TOLERANCE = {'float32': 1e-5, 'bfloat16': 2 * torch.finfo(torch.bfloat16).eps}

# (N, C_in, C_out, H, W, stride, padding, dilation, groups, channels_last)
CORRECTNESS_CASES = {
    'g1': (2, 16, 8, 13, 11, 1, 1, 1, 1, False),
    'gC-stride2': (2, 16, 8, 13, 11, 2, 2, 2, 16, False),
    'g4-channels_last': (2, 16, 8, 13, 11, 1, 2, 2, 4, True),
}


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 in cuDNN convolutions and matmuls on or off within a block."""
    previous = (torch.backends.cudnn.allow_tf32,
                torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        (torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = previous


def environment() -> dict:
    """Device, driver and library versions."""
    info = dict(torch=torch.__version__, cuda=torch.version.cuda)
    try:
        import triton
        info['triton'] = triton.__version__
    except ImportError:
        info['triton'] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            device=props.name,
            capability='.'.join(map(str, torch.cuda.get_device_capability())),
            memory_gb=round(props.total_memory / 2**30, 1))
        try:
            info['driver'] = subprocess.run(
                [
                    'nvidia-smi', '--query-gpu=driver_version',
                    '--format=csv,noheader'
                ],
                capture_output=True,
                text=True,
                timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            info['driver'] = None
    return info


def applicability(device: torch.device,
                  dtype: str = 'float32') -> Dict[str, Optional[str]]:
    """Each implementation of :data:`implementations.IMPLEMENTATIONS` but
    ``auto``: None where it applies on ``device`` with float32 tensors
    computing in ``dtype`` (autocast unless float32), else why not."""
    x = torch.zeros(1, 1, 3, 3, device=device)
    reasons = {}
    for name in implementations.IMPLEMENTATIONS:
        if name == 'auto':
            continue
        with adc_implementation(name):
            try:
                implementations.resolve_implementation(x,
                                                       getattr(torch, dtype))
                reasons[name] = None
            except RuntimeError as error:
                reasons[name] = str(error)
    return reasons


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """Max absolute difference over the oracle's max magnitude."""
    scale = want.detach().abs().max().double().clamp_min(1e-30)
    return float(
        (got.detach().double() - want.detach().double()).abs().max() / scale)


def _outputs(op, leaves, grad_out):
    out = op(*leaves)
    grads = torch.autograd.grad(out, leaves, grad_out.to(out.dtype))
    return [out, *grads]


def check_case(name: str, impl: str, dtype: str, device: torch.device) -> dict:
    """One implementation, one case and dtype: errors against the float64
    reference and, at rate 1, against ``F.conv2d`` (float64)."""
    (num, cin, cout, h, w, s, p, d, g, channels_last) = CORRECTNESS_CASES[name]
    gen = torch.Generator().manual_seed(len(name))
    x = torch.randn(num, cin, h, w, generator=gen)
    weight = torch.randn(cout, cin, 3, 3, generator=gen) / (3 * cin**.5)
    bias = torch.randn(cout, generator=gen)
    rates = 3 * torch.rand(num, g, generator=gen)
    x, weight, bias, rates = (t.to(device) for t in (x, weight, bias, rates))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = dtype != 'float32'
    out_shape = F.conv2d(x, weight, None, s, p, d).shape
    grad_out = torch.randn(out_shape, generator=gen).to(device)
    names = ('out', 'x', 'w', 'r', 'b')

    def adc(impl_name, *leaves):
        with adc_implementation(impl_name), torch.autocast(
                device.type, getattr(torch, dtype), enabled=autocast):
            return adaptive_dilated_conv2d(leaves[0], leaves[1], leaves[2],
                                           leaves[3], s, p, d)

    def run(impl_name, tensors, dtype_=None):
        leaves = [
            t.detach().to(dtype_ or t.dtype).requires_grad_() for t in tensors
        ]
        return _outputs(lambda *ls: adc(impl_name, *ls), leaves, grad_out)

    result = {}
    with tf32(False):
        got = run(impl, (x, weight, rates, bias))
        want = run('reference', (x, weight, rates, bias), torch.float64)
        result['vs_reference'] = {
            k: relative_error(a, b)
            for k, a, b in zip(names, got, want)
        }
        ones = torch.ones_like(rates)
        got = run(impl, (x, weight, ones, bias))
        leaves = [t.detach().double().requires_grad_() for t in (x, weight)]
        bias64 = bias.double().requires_grad_()
        want = _outputs(lambda xx, ww, bb: F.conv2d(xx, ww, bb, s, p, d),
                        leaves + [bias64], grad_out.double())
        result['vs_conv2d_rate1'] = {
            k: relative_error(a, b)
            for k, a, b in zip(('out', 'x', 'w', 'b'), (got[0], got[1], got[2],
                                                        got[4]), want)
        }
    worst = max(
        max(v.values()) for v in result.values() if isinstance(v, dict))
    result['max_error'] = worst
    result['passed'] = worst <= TOLERANCE[dtype]
    return result


def correctness(device: torch.device, impls=CHECKED) -> dict:
    """:func:`check_case` for every case, dtype and implementation where it
    applies; elsewhere the reason."""
    report: Dict[str, dict] = {}
    for dtype in TOLERANCE:
        reasons = applicability(device, dtype)
        for impl in (*impls, *(n for n in reasons if n not in impls)):
            if reasons.get(impl):
                report.setdefault(
                    impl, {})[f'*/{dtype}'] = dict(skipped=reasons[impl])
            elif impl in impls:
                for case in CORRECTNESS_CASES:
                    report.setdefault(impl, {})[f'{case}/{dtype}'] = \
                        check_case(case, impl, dtype, device)
    return report


def applies(report: dict, impl: str) -> bool:
    """Whether ``impl`` was checked (in some dtype) in a correctness
    report."""
    return any('skipped' not in r for r in report.get(impl, {}).values())


def time_layer(shape: 'benchmark_adc.Shape', dtype: str, channels_last: bool,
               impls, device: torch.device, batch: int, repeat: int,
               warmup: int) -> dict:
    """Forward+backward of conv, ADC (per implementation) and deform at one
    shape: median times, ratios to the conv and peak memory."""
    args = argparse.Namespace(
        device=device.type, dtype=dtype, seed=0, groups=None, batch=batch)
    case = benchmark_adc.Case(shape, args)
    if channels_last:
        case.x = case.x.contiguous(memory_format=torch.channels_last)
        case.grad_out = case.grad_out.contiguous(
            memory_format=torch.channels_last)
    ops = {'conv': (case.conv, False), 'deform': (case.deform, True)}
    for impl in impls:
        ops[f'adc-{impl}'] = (_with_impl(case.adc, impl), True)
    fns = {name: case.fwdbwd_fn(op, r) for name, (op, r) in ops.items()}
    rounds = time_rounds_ms(fns, device, repeat, warmup)
    entry = dict(
        shape=shape.name,
        dtype=dtype,
        layout='channels_last' if channels_last else 'contiguous',
        ms={
            k: statistics.median(v)
            for k, v in rounds.items()
        },
        memory_mb={
            name: case.memory_mb(op, r)
            for name, (op, r) in ops.items()
        })
    entry['over_conv'] = {
        k: median_ratio(v, rounds['conv'])
        for k, v in rounds.items() if k != 'conv'
    }
    entry['deform_over_adc'] = {
        k: median_ratio(rounds['deform'], v)
        for k, v in rounds.items() if k.startswith('adc-')
    }
    return entry


def _with_impl(op, impl: str):

    def run(*args):
        with adc_implementation(impl):
            return op(*args)

    return run


def layers(device: torch.device,
           impls,
           batch: int,
           repeat: int,
           warmup: int,
           deadline: float,
           shapes=None) -> List[dict]:
    """:func:`time_layer` over shapes x dtypes x layouts, until
    ``deadline`` (``time.monotonic()``)."""
    entries = []
    for shape in shapes or benchmark_adc.SHAPES:
        for dtype in ('float32', 'bfloat16'):
            for channels_last in (False, True):
                if time.monotonic() > deadline:
                    entries.append(
                        dict(
                            shape=shape.name,
                            dtype=dtype,
                            skipped='time budget (--budget-s) spent'))
                    continue
                with tf32(False):
                    entries.append(
                        time_layer(shape, dtype, channels_last, impls, device,
                                   batch, repeat, warmup))
    return entries


def training(impls, batch: int) -> List[dict]:
    """SimpleBaseline-ResNet-50 training steps without and with ADC."""
    results = []
    for impl in impls:
        args = argparse.Namespace(
            configs=benchmark_model.RESNET50_CONFIGS,
            batch=batch,
            device='cuda',
            impl=impl,
            threads=None,
            seed=0,
            amp=False,
            steps=5,
            warmup=2)
        report = benchmark_model.benchmark(args)
        for r in report['results']:
            r['impl'] = impl
        results.extend(report['results'])
    return results


def write_json(report: dict, path: str, overwrite: bool) -> None:
    """Write ``report``; an existing file is kept unless ``overwrite``."""
    if osp.exists(path) and not overwrite:
        raise SystemExit(f'--out {path} exists; pass --overwrite to replace '
                         'it or choose another path')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(report, f, indent=1)


def _fmt(value, spec='.2f') -> str:
    return '-' if value is None else format(value, spec)


def print_table(report: dict) -> None:
    env = report['environment']
    print('  '.join(f'{k}={v}' for k, v in env.items()))
    print('\ncorrectness (max relative error; pass: float32 <= '
          f"{TOLERANCE['float32']:.0e}, bf16 <= "
          f"{TOLERANCE['bfloat16']:.1e})")
    for impl, cases in report['correctness'].items():
        for name, r in cases.items():
            if 'skipped' in r:
                print(f'  {impl:<10} {name:<20} not applicable: '
                      f"{r['skipped']}")
                continue
            print(f"  {impl:<10} {name:<20} {r['max_error']:.2e} "
                  f"{'ok' if r['passed'] else 'FAIL'}")
    print('\nlayers, forward+backward (ratio to cuDNN conv; peak MB)')
    for e in report['layers']:
        label = f"{e['shape']:<20}{e['dtype']:<10}"
        if 'skipped' in e:
            print(f'  {label}skipped: {e["skipped"]}')
            continue
        ratios = '  '.join(f'{k}={v:.2f}' for k, v in e['over_conv'].items())
        memory = '  '.join(f'{k}={_fmt(v, ".0f")}'
                           for k, v in e['memory_mb'].items())
        print(f"  {label}{e['layout']:<15}conv={e['ms']['conv']:.2f}ms  "
              f'{ratios}  | {memory}')
    print('\ntraining step, SimpleBaseline-ResNet-50')
    for r in report['training']:
        print(f"  {r['config'].split('/')[-1]:<58}{r['impl']:<10}"
              f"{r['images_per_s']:>8.1f} img/s  "
              f"x{r['throughput_vs_baseline']:.2f}  "
              f"{_fmt(r['memory_mb'], '.0f')} MB")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check and measure ADC on a CUDA GPU.')
    parser.add_argument(
        '--out', default='work_dirs/gpu_check.json', help='JSON report')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace an existing --out')
    parser.add_argument(
        '--batch', type=int, default=32, help='batch of the layer timings')
    parser.add_argument(
        '--model-batch',
        type=int,
        default=64,
        help='batch of the training steps')
    parser.add_argument(
        '--repeat', type=int, default=10, help='timed rounds per layer')
    parser.add_argument(
        '--warmup', type=int, default=3, help='untimed runs per layer')
    parser.add_argument(
        '--budget-s',
        type=float,
        default=420,
        help='seconds after which the remaining layer timings are skipped '
        '(the training steps take about a minute more)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit('gpu_check.py needs a CUDA GPU, and '
                         'torch.cuda.is_available() is False here (torch '
                         f'{torch.__version__}, CUDA {torch.version.cuda})')
    if osp.exists(args.out) and not args.overwrite:
        raise SystemExit(f'--out {args.out} exists; pass --overwrite to '
                         'replace it or choose another path')
    start = time.monotonic()
    device = torch.device('cuda')
    report = dict(environment=environment(), arguments=vars(args))
    report['correctness'] = correctness(device)
    impls = [impl for impl in CHECKED if applies(report['correctness'], impl)]
    report['layers'] = layers(device, impls, args.batch, args.repeat,
                              args.warmup, start + args.budget_s)
    report['training'] = training(impls, args.model_batch)
    report['seconds'] = time.monotonic() - start
    write_json(report, args.out, args.overwrite)
    print_table(report)
    print(f'\nwritten to {args.out} ({report["seconds"]:.0f} s)')


if __name__ == '__main__':
    main()
