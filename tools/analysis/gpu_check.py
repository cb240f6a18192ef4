# Copyright (c) mmadc contributors. All rights reserved.
"""Check and measure ADC on one CUDA GPU in one command (a few minutes).

Needs torch, torchvision and (for the Triton kernels) triton, nothing of
OpenMMLab: run it from a plain checkout with ``PYTHONPATH`` set to it, or
through ``tools/analysis/gpu_check.sh OUT_DIR``. Prints a progress line per
item, then a table, and writes one JSON report (after every item, so an
interrupted run keeps what it measured) with

* ``environment``: the device, its driver, CUDA, cuDNN, Python, torch,
  torchvision and triton versions;
* ``correctness``: every implementation (``reference``, ``triton``; the
  native kernel is CPU-only and reported as not applicable) against the
  float64 reference on the same device and against ``F.conv2d`` at rate 1,
  output and gradients, in float32 (TF32 off) and bfloat16 autocast, with
  relative errors (max absolute difference over the oracle's maximum);
* ``training``: training steps (forward, MSE loss, backward, Adam) of
  SimpleBaseline-ResNet-50 without and with ADC
  (:mod:`mmadc.analysis.simple_baseline`, torch only) at batch 64 and
  256x192, in float32 (TF32 off) and bfloat16 autocast: images/s, ratios to
  the baseline (per-round medians) and peak memory, ADC through each
  implementation;
* ``layers``: forward+backward times at the 3x3 shapes of
  SimpleBaseline-ResNet-50 and HRNet-W32 (256x192 input,
  ``tools/analysis/benchmark_adc.py``'s table, batch 32) of ``F.conv2d``
  (cuDNN), ADC (each implementation) and ``torchvision.ops.deform_conv2d``
  with the equivalent offsets, in float32 (TF32 off) and bfloat16 autocast,
  contiguous and channels_last: ratios to the conv (per-round medians) and
  the peak memory of each.

Every row names the implementation that computed it (``impl``:
``reference``, ``triton`` or ``native_cpu``, resolved as the operator does).

Time: the sections run in this order, and one starts no new item (a
dtype of the training, a layer shape) that its duration so far predicts
would end after 25 % (correctness), 60 % (training) or 97 % (layers) of
``--budget-s``; a skipped item is in the report with the reason. An item
that fails is reported with its one-line error (the traceback goes to the
log) and the check goes on.

Without a GPU the command exits with a one-line error and status 2;
``--device cpu`` runs every section on this machine's CPU instead, which
tests the tool (its times say nothing about a GPU).

Example::

    tools/analysis/gpu_check.sh work_dirs/gpu_check
    PYTHONPATH=. python tools/analysis/gpu_check.py \\
        --out work_dirs/gpu_check.json --budget-s 300
"""
import argparse
import contextlib
import copy
import fnmatch
import json
import math
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
import traceback
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmadc.analysis.benchmarking import (median_ratio, peak_memory_mb,
                                         time_rounds_ms)
from mmadc.analysis.simple_baseline import SimpleBaselineResNet50, adc_copy
from mmadc.compat.autocast import autocast_to
from mmadc.ops import (adaptive_dilated_conv2d, adc_implementation,
                       implementations)
from mmadc.ops.native_cpu import native_cpu_available

# the shape table and the layer cases of the sibling benchmark tool (torch
# only, like this one)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import benchmark_adc  # noqa: E402 isort:skip

#: Implementations checked and timed by default.
CHECKED = ('reference', 'triton')

#: The report's name of each implementation
#: :func:`implementations.resolve_implementation` returns.
IMPL_NAMES = {
    'native': 'native_cpu',
    'reference': 'reference',
    'triton': 'triton'
}

#: Relative error that passes, per dtype name.
TOLERANCE = {'float32': 1e-5, 'bfloat16': 2 * torch.finfo(torch.bfloat16).eps}

#: Share of ``--budget-s`` by which each section must end (in run order).
SECTION_SHARES = {'correctness': 0.25, 'training': 0.6, 'layers': 0.97}

#: Why an item was not run.
BUDGET_SPENT = 'time budget (--budget-s) spent'

# (N, C_in, C_out, H, W, stride, padding, dilation, groups, channels_last)
CORRECTNESS_CASES = {
    'g1': (2, 16, 8, 13, 11, 1, 1, 1, 1, False),
    'gC-stride2': (2, 16, 8, 13, 11, 2, 2, 2, 16, False),
    'g4-channels_last': (2, 16, 8, 13, 11, 1, 2, 2, 4, True),
}

#: Names of the training section's models.
BASELINE = 'SimpleBaseline-ResNet-50'
ADC_MODEL = BASELINE + '-ADC'


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


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f'[{time.monotonic() - _STARTED:6.1f} s] {message}', flush=True)


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f'{type(error).__name__}: {lines[0] if lines else ""}'


def _failed(what: str, error: Exception) -> str:
    """Log the traceback of a failed item; its one-line error for the
    report."""
    print(f'{what} failed:', file=sys.stderr)
    traceback.print_exc()
    if torch.cuda.is_available():
        torch.cuda.empty_cache(
        )  # an out-of-memory item must not sink the next
    return _one_line(error)


def _fits(deadline: float, estimate_s: float) -> bool:
    """Whether an item expected to take ``estimate_s`` ends by
    ``deadline`` (``time.monotonic()``)."""
    return time.monotonic() + estimate_s <= deadline


def environment(device: Optional[torch.device] = None) -> dict:
    """Device, driver and library versions (``device``: CUDA where
    available, else CPU)."""
    import torchvision
    if device is None:
        device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    info = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version()
        if torch.backends.cudnn.is_available() else None)
    try:
        import triton
        info['triton'] = triton.__version__
    except ImportError:
        info['triton'] = None
    info['triton_interpret'] = os.environ.get('TRITON_INTERPRET') == '1'
    info['native_cpu_kernel'] = native_cpu_available()
    if device.type != 'cuda':
        info['device'] = f'cpu ({platform.processor() or platform.machine()}'\
            f', {torch.get_num_threads()} threads)'
        return info
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


def implementation_behind(impl: str,
                          x: torch.Tensor,
                          compute_dtype: torch.dtype,
                          weight: Optional[torch.Tensor] = None) -> str:
    """The report's name of what computes ADC of ``x`` (in
    ``compute_dtype``) when ``impl`` is selected.

    Raises:
        RuntimeError: ``impl`` does not apply (one line, why).
    """
    with adc_implementation(impl):
        return IMPL_NAMES[implementations.resolve_implementation(
            x, compute_dtype, weight)]


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
        try:
            implementation_behind(name, x, getattr(torch, dtype))
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
    compute_dtype = getattr(torch, dtype)
    out_shape = F.conv2d(x, weight, None, s, p, d).shape
    grad_out = torch.randn(out_shape, generator=gen).to(device)
    names = ('out', 'x', 'w', 'r', 'b')

    def adc(impl_name, *leaves):
        # float64 leaves (the oracle) are left alone by autocast
        with adc_implementation(impl_name), autocast_to(
                device.type, compute_dtype):
            return adaptive_dilated_conv2d(leaves[0], leaves[1], leaves[2],
                                           leaves[3], s, p, d)

    def run(impl_name, tensors, dtype_=None):
        leaves = [
            t.detach().to(dtype_ or t.dtype).requires_grad_() for t in tensors
        ]
        return _outputs(lambda *ls: adc(impl_name, *ls), leaves, grad_out)

    result: dict = dict(
        impl=implementation_behind(impl, x, compute_dtype, weight))
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


def correctness(device: torch.device,
                impls: Sequence[str] = CHECKED,
                deadline: float = math.inf) -> dict:
    """:func:`check_case` for every case, dtype and implementation where it
    applies; elsewhere the reason (or the time budget)."""
    report: Dict[str, dict] = {}
    estimate = 0.
    for dtype in TOLERANCE:
        reasons = applicability(device, dtype)
        for impl in (*impls, *(n for n in reasons if n not in impls)):
            if reasons.get(impl):
                report.setdefault(
                    impl, {})[f'*/{dtype}'] = dict(skipped=reasons[impl])
            elif impl in impls:
                for case in CORRECTNESS_CASES:
                    key = f'{case}/{dtype}'
                    entries = report.setdefault(impl, {})
                    if not _fits(deadline, estimate):
                        entries[key] = dict(skipped=BUDGET_SPENT)
                        continue
                    began = time.monotonic()
                    try:
                        entries[key] = check_case(case, impl, dtype, device)
                    except Exception as error:
                        entries[key] = dict(
                            error=_failed(f'{impl} {key}', error))
                    estimate = time.monotonic() - began
                    _progress(f'correctness {impl} {key}: ' +
                              (f"{entries[key]['max_error']:.2e}"
                               if 'max_error' in entries[key] else 'error'))
    return report


def applies(report: dict, impl: str) -> bool:
    """Whether ``impl`` was checked (in some dtype) in a correctness
    report."""
    return any('max_error' in r for r in report.get(impl, {}).values())


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
    compute_dtype = case.autocast_dtype or case.x.dtype
    ops = {'conv': (case.conv, False), 'deform': (case.deform, True)}
    names = {'conv': 'F.conv2d', 'deform': 'torchvision.ops.deform_conv2d'}
    for impl in impls:
        ops[f'adc-{impl}'] = (_with_impl(case.adc, impl), True)
        names[f'adc-{impl}'] = implementation_behind(impl, case.x,
                                                     compute_dtype,
                                                     case.weight)
    fns = {name: case.fwdbwd_fn(op, r) for name, (op, r) in ops.items()}
    rounds = time_rounds_ms(fns, device, repeat, warmup)
    entry = dict(
        shape=shape.name,
        dtype=dtype,
        layout='channels_last' if channels_last else 'contiguous',
        impl=names,
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
    conv_mb = entry['memory_mb']['conv']
    entry['memory_over_conv'] = {
        k: None if v is None or not conv_mb else v / conv_mb
        for k, v in entry['memory_mb'].items() if k != 'conv'
    }
    return entry


def _with_impl(op, impl: str):

    def run(*args):
        with adc_implementation(impl):
            return op(*args)

    return run


def iter_layers(device: torch.device,
                impls,
                batch: int,
                repeat: int,
                warmup: int,
                deadline: float,
                shapes=None) -> Iterator[dict]:
    """:func:`time_layer` over dtypes x layouts x shapes (so that a budget
    spent early leaves every shape of the first dtype and layout), each
    while the previous one's duration predicts it ends by ``deadline``
    (``time.monotonic()``)."""
    estimate = 0.
    for dtype in ('float32', 'bfloat16'):
        for channels_last in (False, True):
            layout = 'channels_last' if channels_last else 'contiguous'
            for shape in shapes or benchmark_adc.SHAPES:
                head = dict(shape=shape.name, dtype=dtype, layout=layout)
                if not _fits(deadline, estimate):
                    yield dict(head, skipped=BUDGET_SPENT)
                    continue
                began = time.monotonic()
                try:
                    with tf32(False):
                        entry = time_layer(shape, dtype, channels_last, impls,
                                           device, batch, repeat, warmup)
                except Exception as error:
                    entry = dict(
                        head,
                        error=_failed(f'layer {shape.name} {dtype} {layout}',
                                      error))
                estimate = time.monotonic() - began
                _progress(f'layer {shape.name} {dtype} {layout}: ' +
                          ('  '.join(f'{k}={v:.2f}'
                                     for k, v in entry['over_conv'].items()
                                     ) if 'over_conv' in entry else 'error'))
                yield entry


def layers(*args, **kwargs) -> List[dict]:
    """:func:`iter_layers` as a list."""
    return list(iter_layers(*args, **kwargs))


def _train_step_fn(model: torch.nn.Module, device: torch.device,
                   dtype: torch.dtype, batch: int, input_size: Tuple[int, int],
                   impl: Optional[str], seed: int):
    """One training step of ``model`` on a fixed random batch: forward (in
    ``dtype`` by autocast unless float32), MSE against random target
    heatmaps (mmpose's ``KeypointMSELoss`` without keypoint weights),
    backward, Adam (the configs' optimizer and learning rate)."""
    gen = torch.Generator().manual_seed(seed)
    height, width = input_size
    images = torch.randn(batch, 3, height, width, generator=gen).to(device)
    num_keypoints = model.head[-1].out_channels
    targets = torch.rand(
        batch, num_keypoints, height // 4, width // 4,
        generator=gen).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with (adc_implementation(impl) if impl else contextlib.nullcontext()):
            with autocast_to(device.type, dtype):
                heatmaps = model(images)
            loss = F.mse_loss(heatmaps.float(), targets)
            loss.backward()
        optimizer.step()

    return step


def training_rows(device: torch.device, impls: Sequence[str], dtype: str,
                  batch: int, input_size: Tuple[int,
                                                int], steps: int, warmup: int,
                  models: Tuple[torch.nn.Module,
                                torch.nn.Module], seed: int) -> List[dict]:
    """Training steps of the baseline and of the ADC model through each
    implementation in one dtype, timed in turns (see
    :func:`~mmadc.analysis.benchmarking.time_rounds_ms`)."""
    compute_dtype = getattr(torch, dtype)
    probe = torch.zeros(1, 1, 3, 3, device=device)
    head = dict(
        dtype=dtype,
        batch=batch,
        input='x'.join(map(str, input_size)),
        tf32=False)
    rows = {'baseline': dict(head, model=BASELINE, impl=None)}
    candidates = {'baseline': (models[0], None)}
    for impl in impls:
        name = f'adc-{impl}'
        rows[name] = dict(head, model=ADC_MODEL, requested=impl)
        try:
            rows[name]['impl'] = implementation_behind(impl, probe,
                                                       compute_dtype)
        except RuntimeError as error:
            rows[name].update(impl=None, skipped=str(error))
            continue
        candidates[name] = (models[1], impl)
    fns = {}
    for name, (model, impl) in candidates.items():
        try:
            step = _train_step_fn(
                copy.deepcopy(model).to(device), device, compute_dtype, batch,
                input_size, impl, seed)
            for _ in range(max(warmup, 1)):  # compiles, allocates, tunes
                step()
            fns[name] = step
        except Exception as error:
            rows[name]['error'] = _failed(f'training {name} {dtype}', error)
    rounds = time_rounds_ms(fns, device, steps, 0) if fns else {}
    for name, step in fns.items():
        row = rows[name]
        row['step_ms'] = statistics.median(rounds[name])
        row['images_per_s'] = batch / (row['step_ms'] / 1e3)
        row['memory_mb'] = peak_memory_mb(step, device)
    base = rows['baseline']
    for name, row in rows.items():
        if 'step_ms' not in row or 'step_ms' not in base:
            continue
        # images/s ratio: the baseline's step time over this one's, per round
        row['throughput_vs_baseline'] = median_ratio(rounds['baseline'],
                                                     rounds[name])
        row['memory_vs_baseline'] = (None if row['memory_mb'] is None
                                     or not base['memory_mb'] else
                                     row['memory_mb'] / base['memory_mb'])
    return list(rows.values())


def iter_training(device: torch.device,
                  impls: Sequence[str],
                  batch: int,
                  input_size: Tuple[int, int] = (256, 192),
                  steps: int = 5,
                  warmup: int = 2,
                  deadline: float = math.inf,
                  seed: int = 0) -> Iterator[dict]:
    """:func:`training_rows` in float32 (TF32 off) and bfloat16, each while
    the previous one's duration predicts it ends by ``deadline``. The ADC
    model starts from the baseline's weights (:func:`adc_copy`)."""
    models = None
    estimate = 0.
    for dtype in ('float32', 'bfloat16'):
        if not _fits(deadline, estimate):
            yield dict(dtype=dtype, model='all', skipped=BUDGET_SPENT)
            continue
        began = time.monotonic()
        if models is None:
            torch.manual_seed(seed)
            baseline = SimpleBaselineResNet50()
            models = (baseline, adc_copy(baseline))
        with tf32(False):
            rows = training_rows(device, impls, dtype, batch, input_size,
                                 steps, warmup, models, seed)
        estimate = time.monotonic() - began
        for row in rows:
            _progress(f"training {row['model']} {row.get('impl')} {dtype}: " +
                      (f"{row['images_per_s']:.1f} img/s" if 'images_per_s' in
                       row else 'not run'))
            yield row
        if device.type == 'cuda':
            torch.cuda.empty_cache()


def write_json(report: dict, path: str, overwrite: bool) -> None:
    """Write ``report``; an existing file is kept unless ``overwrite``."""
    if osp.exists(path) and not overwrite:
        raise SystemExit(f'--out {path} exists; pass --overwrite to replace '
                         'it or choose another path')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.part', 'w') as f:
        json.dump(report, f, indent=1)
    os.replace(path + '.part', path)  # a reader never sees half a report


def _fmt(value, spec='.2f') -> str:
    return '-' if value is None else format(value, spec)


def _not_run(row: dict) -> Optional[str]:
    if 'skipped' in row:
        return f"skipped: {row['skipped']}"
    if 'error' in row:
        return f"error: {row['error']}"
    return None


def print_table(report: dict) -> None:
    env = report['environment']
    print('  '.join(f'{k}={v}' for k, v in env.items()))
    print('\ncorrectness (max relative error; pass: float32 <= '
          f"{TOLERANCE['float32']:.0e}, bf16 <= "
          f"{TOLERANCE['bfloat16']:.1e})")
    for impl, cases in report['correctness'].items():
        for name, r in cases.items():
            if 'max_error' not in r:
                reason = r.get('error') or r['skipped']
                print(f'  {impl:<10} {name:<26} not run: {reason}')
                continue
            print(f"  {impl:<10} {name:<26} {r['max_error']:.2e} "
                  f"{'ok' if r['passed'] else 'FAIL'}  ({r['impl']})")
    print('\ntraining step (images/s; ratio to the baseline; peak MB)')
    for r in report['training']:
        impl = r.get('impl') or '-'
        if r.get('requested') not in (None, impl):
            impl += f" (--impls {r['requested']})"
        label = f"  {r['model']:<30}{r['dtype']:<10}{impl:<24}"
        if _not_run(r):
            print(label + _not_run(r))
            continue
        print(f"{label}{r['images_per_s']:>8.1f} img/s  "
              f"x{_fmt(r.get('throughput_vs_baseline'))}  "
              f"{_fmt(r['memory_mb'], '.0f')} MB")
    print('\nlayers, forward+backward (ratio to F.conv2d; peak MB)')
    for e in report['layers']:
        label = f"  {e['shape']:<20}{e['dtype']:<10}{e['layout']:<15}"
        if _not_run(e):
            print(label + _not_run(e))
            continue
        ratios = '  '.join(f'{k}={v:.2f}' for k, v in e['over_conv'].items())
        memory = '  '.join(f'{k}={_fmt(v, ".0f")}'
                           for k, v in e['memory_mb'].items())
        print(f"{label}conv={e['ms']['conv']:.2f}ms  {ratios}  | {memory}")
    impls = sorted({
        v
        for e in report['layers']
        for k, v in e.get('impl', {}).items() if k.startswith('adc-')
    })
    if impls:
        print(f"  (adc-NAME: --impls NAME, computed by {', '.join(impls)})")


def _positive(minimum: int):

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f'expected an integer >= {minimum}, got {text!r}')
        return value

    return parse


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f'expected a positive number of seconds, got {text!r}')
    return value


def _impls(text: str) -> List[str]:
    names = [n.strip() for n in text.split(',') if n.strip()]
    unknown = [n for n in names if n not in implementations.IMPLEMENTATIONS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            'expected a comma-separated list of '
            f'{", ".join(implementations.IMPLEMENTATIONS)}, got {text!r}')
    return list(dict.fromkeys(names))


def _shapes(text: str) -> List['benchmark_adc.Shape']:
    patterns = [p.strip() for p in text.split(',') if p.strip()]
    chosen = [
        s for s in benchmark_adc.SHAPES if any(
            fnmatch.fnmatchcase(s.name, p) for p in patterns)
    ]
    if not chosen:
        raise argparse.ArgumentTypeError(
            f'{text!r} matches no shape; known: '
            f'{", ".join(s.name for s in benchmark_adc.SHAPES)}')
    return chosen


def _input_size(text: str) -> Tuple[int, int]:
    try:
        size = tuple(int(v) for v in text.lower().split('x'))
    except ValueError:
        size = ()
    if len(size) != 2 or any(v < 32 or v % 32 for v in size):
        raise argparse.ArgumentTypeError(
            'expected HEIGHTxWIDTH, each a multiple of 32 (the backbone '
            f'downsamples 32 times), got {text!r}')
    return size  # type: ignore[return-value]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check and measure ADC on a CUDA GPU (torch only).')
    parser.add_argument(
        '--out', default='work_dirs/gpu_check.json', help='JSON report')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace an existing --out')
    parser.add_argument(
        '--device',
        default='cuda',
        choices=['cuda', 'cpu'],
        help='cpu: run every section on this CPU, to test the tool without '
        'a GPU (its times say nothing about a GPU)')
    parser.add_argument(
        '--impls',
        type=_impls,
        default=list(CHECKED),
        help='comma-separated ADC implementations to check and time '
        f'(default: {",".join(CHECKED)})')
    parser.add_argument(
        '--budget-s',
        type=_budget,
        default=480,
        help='seconds the whole check may take: items that would end later '
        'are skipped and reported as such (default: 480)')
    parser.add_argument(
        '--batch',
        type=_positive(1),
        default=32,
        help='batch of the layer timings')
    parser.add_argument(
        '--repeat',
        type=_positive(1),
        default=10,
        help='timed rounds per layer')
    parser.add_argument(
        '--warmup',
        type=_positive(0),
        default=3,
        help='untimed runs per layer')
    parser.add_argument(
        '--shapes',
        type=_shapes,
        default=benchmark_adc.SHAPES,
        help='comma-separated names or globs of the layer shapes (default: '
        'all)')
    parser.add_argument(
        '--model-batch',
        type=_positive(1),
        default=64,
        help='batch of the training steps')
    parser.add_argument(
        '--model-input',
        type=_input_size,
        default=(256, 192),
        help='HEIGHTxWIDTH of the training images (default: 256x192)')
    parser.add_argument(
        '--steps',
        type=_positive(1),
        default=5,
        help='timed training steps per model')
    parser.add_argument(
        '--model-warmup',
        type=_positive(1),
        default=2,
        help='untimed training steps per model')
    return parser.parse_args(argv)


def _fail(message: str) -> None:
    """Exit with one line on stderr and status 2 (as argparse does)."""
    print(f'gpu_check.py: error: {message}', file=sys.stderr)
    raise SystemExit(2)


def run_check(args: argparse.Namespace,
              device: torch.device,
              start: Optional[float] = None) -> dict:
    """Every section within ``args.budget_s`` from ``start``
    (``time.monotonic()``, default now); the report is written to
    ``args.out`` after every item."""
    start = time.monotonic() if start is None else start
    until = {
        name: start + share * args.budget_s
        for name, share in SECTION_SHARES.items()
    }
    arguments = dict(vars(args), shapes=[s.name for s in args.shapes])
    report = dict(
        environment=environment(device),
        arguments=arguments,
        budget=dict(
            budget_s=args.budget_s,
            sections_end_by_s={
                k: round(v - start, 1)
                for k, v in until.items()
            }),
        correctness={},
        training=[],
        layers=[])

    def save():
        report['seconds'] = time.monotonic() - start
        write_json(report, args.out, overwrite=True)

    _progress('  '.join(f'{k}={v}' for k, v in report['environment'].items()))
    try:
        save()
        report['correctness'] = correctness(device, args.impls,
                                            until['correctness'])
        save()
        impls = [i for i in args.impls if applies(report['correctness'], i)]
        for row in iter_training(device, impls, args.model_batch,
                                 args.model_input, args.steps,
                                 args.model_warmup, until['training']):
            report['training'].append(row)
            save()
        for entry in iter_layers(device, impls, args.batch, args.repeat,
                                 args.warmup, until['layers'], args.shapes):
            report['layers'].append(entry)
            save()
    except KeyboardInterrupt:
        # gpu_check.sh's timeout sends SIGINT: keep what was measured
        report['interrupted'] = (f'stopped by SIGINT after '
                                 f'{time.monotonic() - start:.0f} s')
        save()
        _fail(f"{report['interrupted']}; {args.out} holds the items "
              'finished before')
    save()
    return report


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        _fail(f'--out {args.out} exists; pass --overwrite to replace it or '
              'choose another path')
    if args.device == 'cuda' and not torch.cuda.is_available():
        _fail('needs a CUDA GPU, and torch.cuda.is_available() is False here '
              f'(torch {torch.__version__}, CUDA {torch.version.cuda}); '
              '--device cpu tests the tool on the CPU')
    # the budget counts from the start of the process, imports included
    report = run_check(args, torch.device(args.device), _STARTED)
    print()
    print_table(report)
    print(f'\nwritten to {args.out} ({report["seconds"]:.0f} s)')


if __name__ == '__main__':
    main()
