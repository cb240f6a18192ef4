# Copyright (c) mmadc contributors. All rights reserved.
"""Benchmark adaptive dilated convolution against its floor and its peer.

For the 3x3 convolutions of SimpleBaseline-ResNet-50 and HRNet-W32 at a
256x192 input, times the forward and the forward+backward of

* ``conv``: ``F.conv2d`` of the same shape (the floor: ADC does the same
  multiply-adds plus the interpolation);
* ``adc``: :func:`mmadc.ops.adaptive_dilated_conv2d` with random fractional
  rates in [0.5, 2.5], one rate per dilation group;
* ``deform``: ``torchvision.ops.deform_conv2d`` with the equivalent offsets
  (``offset_groups = g``), the obvious slower alternative.

Times are medians over ``--repeat`` rounds after ``--warmup`` runs; each
round times conv, ADC and deform once in turn, back to back, and the ratios
are medians of the per-round ratios, so a busy phase of a shared machine
affects both sides of a ratio alike (CUDA is synchronised around each run).
``--json`` also gives every round's times (``rounds_ms``).
Forward runs under ``torch.no_grad()``; forward+backward computes the
gradients of the input, the weight and the rates (offsets for deform) with
``torch.autograd.grad``.

``--gemm-floor`` also times the native kernel's GEMMs alone, over the
whole layer (``gemm``): the weight (C_out, 9 C_in) times a column matrix of
the layer's size (9 C_in, N H_out W_out) in the forward, and in the
backward also the column gradient and the weight gradient, with the GEMM
library the kernel uses. That is ADC's kernel without its sampling, so
``adc/gemm`` is what the sampling and the blocking add, and ``gemm/conv``
how far an im2col form is from the convolution before any sampling.

``--impl`` picks ADC's implementation: ``auto`` (the native CPU kernel
where it applies, see :mod:`mmadc.ops.implementations`), ``native`` or
``reference``.

``--runtime onnxruntime`` times the forward of the same layers where a
deployed model runs them: each is exported as the deployment tools export
a model (:func:`mmadc.deployment.export_module`: ADC in standard operators,
see :mod:`mmadc.ops.decomposition`; a symbolic batch unless ``--batch`` is
1), ADC with its rates as a second input, and run by onnxruntime on the CPU
with ``--threads`` threads against the ``Conv`` of the same shape. The
report adds each ADC layer's largest error against PyTorch (relative to the
output scale). deform_conv2d has no standard-operator export and is not
timed there, nor is memory. A layer takes seconds to export, so this is
the quick way to compare forms of the decomposition; whole models are
``benchmark_deploy.py``'s.

Memory: the peak memory one forward+backward adds to what is in use before
it (:func:`mmadc.analysis.benchmarking.peak_memory_mb`): on CUDA
``torch.cuda.max_memory_allocated``, on CPU the peak resident set size,
which counts every temporary and library scratch buffer. The output, the
gradients and the incoming output gradient are included for every op alike.

Examples::

    python tools/analysis/benchmark_adc.py --threads 2
    python tools/analysis/benchmark_adc.py --shapes resnet50-stage1 \\
        --mode fwdbwd --no-deform --json
    # the layers in onnxruntime, as deployed (forward only)
    python tools/analysis/benchmark_adc.py --runtime onnxruntime --threads 2
"""
import argparse
import contextlib
import fnmatch
import os.path as osp
import statistics
import tempfile
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from mmadc.analysis.benchmarking import (add_common_arguments, emit_report,
                                         median_ratio, peak_memory_mb,
                                         selected_kernels, time_rounds_ms)
from mmadc.ops import adaptive_dilated_conv2d
from mmadc.ops.native_cpu import (gemm_library_in_use, gemm_nt,
                                  native_cpu_available)
from mmadc.ops.reference import release_workspace


class Shape(NamedTuple):
    """A 3x3 conv of a backbone: input channels == output channels."""
    name: str
    channels: int
    height: int
    width: int
    stride: int


# Input 256x192. ResNet-50 (pytorch style, as in mmpose): Bottleneck conv2
# is planes -> planes 3x3; the first block of stages 2-4 has stride 2 there.
# HRNet-W32: BasicBlock 3x3 convs of the four branches.
SHAPES = [
    Shape('resnet50-stage1', 64, 64, 48, 1),
    Shape('resnet50-stage2', 128, 32, 24, 1),
    Shape('resnet50-stage2-s2', 128, 64, 48, 2),
    Shape('resnet50-stage3', 256, 16, 12, 1),
    Shape('resnet50-stage3-s2', 256, 32, 24, 2),
    Shape('resnet50-stage4', 512, 8, 6, 1),
    Shape('resnet50-stage4-s2', 512, 16, 12, 2),
    Shape('hrnet-w32-branch1', 32, 64, 48, 1),
    Shape('hrnet-w32-branch2', 64, 32, 24, 1),
    Shape('hrnet-w32-branch3', 128, 16, 12, 1),
    Shape('hrnet-w32-branch4', 256, 8, 6, 1),
]

RUNTIMES = ('torch', 'onnxruntime')

DTYPES = {
    'float32': torch.float32,
    'float64': torch.float64,
    'float16': torch.float16,
    'bfloat16': torch.bfloat16,
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time ADC against nn.Conv2d and deform_conv2d.')
    add_common_arguments(parser)
    parser.add_argument(
        '--dtype',
        default='float32',
        choices=list(DTYPES),
        help='float32/float64: tensors of that dtype; float16/bfloat16: '
        'float32 tensors under torch.autocast with that dtype (AMP)')
    parser.add_argument(
        '--repeat', type=int, default=10, help='timed runs per measurement')
    parser.add_argument(
        '--warmup', type=int, default=3, help='untimed runs before timing')
    parser.add_argument(
        '--shapes',
        default='*',
        help='comma-separated shape names or glob patterns, e.g. '
        f'"resnet50-stage1" or "hrnet-*"; known: '
        f'{", ".join(s.name for s in SHAPES)}')
    parser.add_argument(
        '--mode',
        default=None,
        choices=['fwd', 'fwdbwd', 'both'],
        help='forward only, forward+backward, or both (default: both; fwd '
        'with --runtime onnxruntime)')
    parser.add_argument(
        '--runtime',
        default='torch',
        choices=RUNTIMES,
        help='eager PyTorch, or onnxruntime on the CPU (each layer exported '
        'with ADC in standard operators; forward only)')
    parser.add_argument(
        '--groups',
        type=int,
        default=None,
        help='dilation groups g (default: one per input channel, the '
        "paper's default)")
    parser.add_argument(
        '--no-deform',
        action='store_true',
        help='skip deform_conv2d (slow, especially with many groups)')
    parser.add_argument(
        '--gemm-floor',
        action='store_true',
        help="also time the native kernel's GEMMs alone over each layer "
        '(its multiply-adds without the sampling)')
    args = parser.parse_args(argv)
    check_runtime(args)
    check_gemm_floor(args)
    return args


def check_gemm_floor(args: argparse.Namespace) -> None:
    """Exit with one line where ``--gemm-floor`` cannot time the native
    kernel's GEMMs (they are its CPU float32/float64 products)."""
    if not args.gemm_floor:
        return
    for value, expected, name in (
        (args.runtime, 'torch', '--runtime'),
        (args.device, 'cpu', '--device'),
    ):
        if value != expected:
            raise SystemExit(f'{name} {value}: --gemm-floor times the '
                             f'native CPU kernel; use {name} {expected}')
    if args.dtype not in ('float32', 'float64'):
        raise SystemExit(f'--dtype {args.dtype}: --gemm-floor times the '
                         'native kernel, which runs float32 and float64')
    if not native_cpu_available():
        raise SystemExit('--gemm-floor: the native CPU kernel is not built '
                         '(pip install -e . builds it)')


def check_runtime(args: argparse.Namespace) -> None:
    """Resolve ``--mode`` for the runtime; exit with one line where the
    runtime cannot run what was asked."""
    if args.runtime == 'torch':
        args.mode = args.mode or 'both'
        return
    args.mode = args.mode or 'fwd'
    if args.mode != 'fwd':
        raise SystemExit(f'--mode {args.mode}: onnxruntime runs the forward '
                         'only; use --mode fwd')
    if args.device != 'cpu':
        raise SystemExit(f'--device {args.device}: --runtime onnxruntime '
                         'runs on the CPU; use --device cpu')
    if args.dtype != 'float32':
        raise SystemExit(f'--dtype {args.dtype}: --runtime onnxruntime runs '
                         'the float32 export; use --dtype float32')
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise SystemExit(f'--runtime onnxruntime needs onnx, onnxscript and '
                         f'onnxruntime (pip install -e .[deploy]): {err}')


def select_shapes(patterns: str) -> List[Shape]:
    wanted = [p.strip() for p in patterns.split(',') if p.strip()]
    chosen = [
        s for s in SHAPES if any(
            fnmatch.fnmatchcase(s.name, p) for p in wanted)
    ]
    if not chosen:
        raise SystemExit(f'no shape matches {patterns!r}; known: '
                         f'{", ".join(s.name for s in SHAPES)}')
    return chosen


def deform_offsets(rates: torch.Tensor, height: int,
                   width: int) -> torch.Tensor:
    """Offsets of deform_conv2d equivalent to ADC rates (3x3, d=1).

    Tap (i, j) of group g: (dy, dx) = ((r_g - 1) * i, (r_g - 1) * j) at every
    output position; layout (N, 2 * g * 9, Ho, Wo), (dy, dx) pairs,
    group-major then taps row-major.
    """
    num, groups = rates.shape
    taps = torch.arange(-1, 2, device=rates.device, dtype=rates.dtype)
    scale = (rates - 1)[:, :, None, None]
    dy = (scale * taps[:, None]).expand(num, groups, 3, 3)
    dx = (scale * taps[None, :]).expand(num, groups, 3, 3)
    offset = torch.stack([dy, dx], dim=-1).reshape(num, groups * 18, 1, 1)
    return offset.expand(-1, -1, height, width)


class Case:
    """Tensors and callables of one shape."""

    def __init__(self, shape: Shape, args: argparse.Namespace) -> None:
        device = torch.device(args.device)
        dtype = DTYPES[args.dtype]
        self.autocast_dtype = None
        if dtype in (torch.float16, torch.bfloat16):
            self.autocast_dtype, dtype = dtype, torch.float32
        self.device = device
        gen = torch.Generator().manual_seed(args.seed)
        c = shape.channels
        groups = args.groups or c
        if c % groups:
            raise SystemExit(f'--groups {groups} does not divide {c} '
                             f'channels of {shape.name}')
        self.x = torch.randn(
            args.batch, c, shape.height, shape.width,
            generator=gen).to(device, dtype)
        self.weight = (torch.randn(c, c, 3, 3, generator=gen) /
                       (3 * c**0.5)).to(device, dtype)
        self.rates = (0.5 +
                      2 * torch.rand(args.batch, groups, generator=gen)).to(
                          device, dtype)
        self.stride = shape.stride
        out = F.conv2d(self.x, self.weight, stride=self.stride, padding=1)
        self.out_hw = out.shape[2:]
        self.grad_out = torch.randn(
            out.shape, generator=gen).to(device, out.dtype)

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # each op returns (output, tensors to differentiate)
    def conv(self, x, weight, rates):
        return F.conv2d(x, weight, stride=self.stride, padding=1)

    def adc(self, x, weight, rates):
        return adaptive_dilated_conv2d(
            x, weight, rates, stride=self.stride, padding=1)

    def deform(self, x, weight, rates):
        offset = deform_offsets(rates, *self.out_hw)
        return deform_conv2d(x, offset, weight, stride=self.stride, padding=1)

    def gemm_fn(self, mode: str) -> Callable:
        """The native kernel's GEMMs alone over the whole layer (see the
        module docstring), as the kernel computes them: the output
        ``W cols``, the column gradient ``W^T grad_out`` and the weight
        gradient ``grad_out cols^T``."""
        c_out = self.weight.shape[0]
        wmat = self.weight.reshape(c_out, -1)
        # (C_out, N H_out W_out), as the kernel lays the output gradient out
        grad_out = self.grad_out.transpose(0, 1).reshape(c_out, -1)
        gen = torch.Generator().manual_seed(0)
        cols = torch.randn(
            wmat.shape[1], grad_out.shape[1], generator=gen).to(wmat.dtype)

        def forward():
            gemm_nt(wmat, cols.t())

        def fwdbwd():
            forward()
            gemm_nt(wmat.t(), grad_out.t())
            gemm_nt(grad_out, cols)

        return forward if mode == 'fwd' else fwdbwd

    def leaves(self, with_rates: bool):
        x = self.x.detach().requires_grad_()
        weight = self.weight.detach().requires_grad_()
        rates = self.rates.detach().requires_grad_(with_rates)
        return x, weight, rates

    def forward_fn(self, op: Callable) -> Callable:

        def run():
            with torch.no_grad(), self.autocast():
                op(self.x, self.weight, self.rates)

        return run

    def fwdbwd_fn(self, op: Callable, with_rates: bool) -> Callable:

        def run():
            x, weight, rates = self.leaves(with_rates)
            with self.autocast():
                out = op(x, weight, rates)
            inputs = [x, weight] + ([rates] if with_rates else [])
            torch.autograd.grad(out, inputs, self.grad_out.to(out.dtype))

        return run

    def memory_mb(self, op: Callable, with_rates: bool) -> Optional[float]:
        """See the module docstring for what this measures (median of three
        runs: the resident size of a CPU process is a noisy measure)."""
        runs = []
        for _ in range(3):
            release_workspace()  # the reference path's scratch counts too
            runs.append(
                peak_memory_mb(self.fwdbwd_fn(op, with_rates), self.device))
        return None if None in runs else statistics.median(runs)


def torch_fns(case: Case, ops: dict, mode: str) -> Dict[str, Callable]:
    """Per op of ``ops`` (name: (op, whether the rates get a gradient)), a
    function running its forward (``mode`` fwd) or forward+backward."""
    return {
        name: (case.forward_fn(op) if mode == 'fwd' else case.fwdbwd_fn(
            op, with_rates))
        for name, (op, with_rates) in ops.items()
    }


class ExportedLayer(nn.Module):
    """One layer of a case as a deployed model holds it: the weight a
    constant, the input and (for ADC) the rates the ONNX inputs."""

    def __init__(self, case: Case, op: Callable) -> None:
        super().__init__()
        self.weight = nn.Parameter(case.weight, requires_grad=False)
        self.op = op

    def forward(self, x: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        return self.op(x, self.weight, rates)


def onnxruntime_fns(case: Case, threads: Optional[int],
                    work_dir: str) -> Tuple[Dict[str, Callable], float]:
    """The case's conv and ADC exported to ONNX and run by onnxruntime.

    Returns:
        tuple: A dict of ``'conv'`` and ``'adc'``, each a function running
        that layer once on the case's input, and ADC's largest error in
        onnxruntime against PyTorch (relative to the output scale).
    """
    from mmadc.deployment.onnx_export import (ExportError, export_module,
                                              onnxruntime_session,
                                              relative_error)
    batch = case.x.shape[0]
    if batch == 1:
        example = (case.x, case.rates)
    else:
        # torch.export specialises a size of 1: traced at 2 and kept
        # symbolic, as benchmark_deploy.py exports its models
        example = (case.x[:1].expand(2, -1, -1, -1).contiguous(),
                   case.rates[:1].expand(2, -1).contiguous())
    feed = dict(input=case.x.numpy(), rates=case.rates.numpy())
    fns = {}
    for name, op in (('conv', case.conv), ('adc', case.adc)):
        onnx_file = osp.join(work_dir, f'{name}.onnx')
        try:
            export_module(
                ExportedLayer(case, op).eval(), example, onnx_file,
                ['input', 'rates'], batch != 1)
        except ExportError as err:
            raise SystemExit(f'--runtime onnxruntime: {err}') from None
        # timed in turns with the other layer's session: no busy-waiting
        # (spinning threads of one session take the cores from the other)
        session = onnxruntime_session(onnx_file, threads, spinning=False)
        # the exporter drops an input the graph does not read (the conv's
        # rates)
        inputs = {i.name: feed[i.name] for i in session.get_inputs()}
        fns[name] = (lambda s=session, f=inputs: s.run(None, f))
    got = torch.from_numpy(fns['adc']()[0])
    with torch.no_grad():
        expected = case.adc(case.x, case.weight, case.rates)
    return fns, relative_error(got, expected)


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else a / b


def benchmark(args: argparse.Namespace) -> dict:
    with selected_kernels(args):
        return _benchmark(args)


def _benchmark(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda given but CUDA is not available')
    modes = ['fwd', 'fwdbwd'] if args.mode == 'both' else [args.mode]
    onnxruntime = args.runtime == 'onnxruntime'
    results = []
    for shape in select_shapes(args.shapes):
        case = Case(shape, args)
        ops = {'conv': (case.conv, False), 'adc': (case.adc, True)}
        if not args.no_deform and not onnxruntime:
            ops['deform'] = (case.deform, True)
        entry = dict(
            shape=shape.name,
            channels=shape.channels,
            height=shape.height,
            width=shape.width,
            stride=shape.stride,
            groups=case.rates.shape[1])
        for mode in modes:
            if onnxruntime:
                with tempfile.TemporaryDirectory() as work_dir:
                    fns, entry['onnx_max_error'] = onnxruntime_fns(
                        case, args.threads, work_dir)
            else:
                fns = torch_fns(case, ops, mode)
                if args.gemm_floor:
                    fns['gemm'] = case.gemm_fn(mode)
            rounds = time_rounds_ms(fns, case.device, args.repeat, args.warmup)
            median = {k: statistics.median(v) for k, v in rounds.items()}
            gemm = rounds.get('gemm')
            entry[mode] = dict(
                conv_ms=median['conv'],
                adc_ms=median['adc'],
                deform_ms=median.get('deform'),
                gemm_ms=median.get('gemm'),
                adc_over_conv=median_ratio(rounds['adc'], rounds['conv']),
                deform_over_adc=(median_ratio(rounds['deform'], rounds['adc'])
                                 if 'deform' in rounds else None),
                gemm_over_conv=(median_ratio(gemm, rounds['conv'])
                                if gemm else None),
                adc_over_gemm=(median_ratio(rounds['adc'], gemm)
                               if gemm else None),
                rounds_ms=rounds)
        entry['memory_mb'] = {
            name: None if onnxruntime else case.memory_mb(op, with_rates)
            for name, (op, with_rates) in ops.items()
        }
        entry['memory_adc_over_conv'] = ratio(entry['memory_mb']['adc'],
                                              entry['memory_mb']['conv'])
        results.append(entry)
    return dict(
        config=dict(
            batch=args.batch,
            device=args.device,
            dtype=args.dtype,
            threads=torch.get_num_threads(),
            repeat=args.repeat,
            warmup=args.warmup,
            runtime=args.runtime,
            onnxruntime=onnxruntime_version() if onnxruntime else None,
            impl=args.impl,
            native_cpu_kernel=native_cpu_available(),
            gemm=gemm_library_in_use(),
            gemm_floor=args.gemm_floor,
            memory=memory_measure(args),
            torch=torch.__version__),
        results=results)


def memory_measure(args: argparse.Namespace) -> Optional[str]:
    """What the report's memory figures are (None: not measured)."""
    if args.runtime == 'onnxruntime':
        return None
    if args.device == 'cuda':
        return 'cuda peak allocated during fwd+bwd'
    return 'cpu peak resident memory added by fwd+bwd'


def onnxruntime_version() -> str:
    import onnxruntime
    return onnxruntime.__version__


def _fmt(value: Optional[float], spec: str = '.2f') -> str:
    return '-' if value is None else format(value, spec)


def print_table(report: dict) -> None:
    cfg = report['config']
    if cfg['runtime'] == 'onnxruntime':
        runtime = (f"runtime=onnxruntime {cfg['onnxruntime']} (ADC in "
                   'standard operators)')
    else:
        runtime = (f"impl={cfg['impl']} (native CPU kernel built: "
                   f"{cfg['native_cpu_kernel']}, float32 GEMMs: "
                   f"{cfg['gemm']})")
    print(f"device={cfg['device']} dtype={cfg['dtype']} {runtime} "
          f"batch={cfg['batch']} threads={cfg['threads']} "
          f"repeat={cfg['repeat']} (median) warmup={cfg['warmup']}")
    floor = cfg['gemm_floor']
    header = (f"{'shape':<20}{'C@HxW/s':>14}{'mode':>8}{'conv ms':>10}"
              f"{'adc ms':>10}{'deform ms':>11}{'adc/conv':>10}"
              f"{'deform/adc':>12}")
    if floor:
        header += f"{'gemm ms':>10}{'gemm/conv':>11}{'adc/gemm':>10}"
    print(header)
    print('-' * len(header))
    for r in report['results']:
        geometry = f"{r['channels']}@{r['height']}x{r['width']}/{r['stride']}"
        for mode in ('fwd', 'fwdbwd'):
            if mode not in r:
                continue
            m = r[mode]
            row = (f"{r['shape']:<20}{geometry:>14}{mode:>8}"
                   f"{_fmt(m['conv_ms']):>10}{_fmt(m['adc_ms']):>10}"
                   f"{_fmt(m['deform_ms']):>11}"
                   f"{_fmt(m['adc_over_conv']):>10}"
                   f"{_fmt(m['deform_over_adc']):>12}")
            if floor:
                row += (f"{_fmt(m['gemm_ms']):>10}"
                        f"{_fmt(m['gemm_over_conv']):>11}"
                        f"{_fmt(m['adc_over_gemm']):>10}")
            print(row)
    if cfg['runtime'] == 'onnxruntime':
        print('\nADC in onnxruntime, largest error against PyTorch '
              '(relative to the output scale):')
        for r in report['results']:
            print(f"  {r['shape']:<20}{r['onnx_max_error']:.1e}")
        return
    print(f"\nmemory (MB, {cfg['memory']}):")
    for r in report['results']:
        mem = '  '.join(f'{k}={_fmt(v, ".1f")}'
                        for k, v in r['memory_mb'].items())
        print(f"  {r['shape']:<20}{mem}  "
              f"adc/conv={_fmt(r['memory_adc_over_conv'])}")


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    emit_report(benchmark(args), args.json, print_table)


if __name__ == '__main__':
    main()
