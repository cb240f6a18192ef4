# Copyright (c) mmadc contributors. All rights reserved.
"""Benchmark two models where they are deployed: ONNX Runtime and eager
PyTorch inference on the CPU.

Each model is an mmpose/mmseg config (built with its fresh initialisation,
no checkpoint, as the other benchmarks do, then exported to ONNX with
:mod:`mmadc.deployment.onnx_export` and checked against PyTorch in
onnxruntime) or an ``.onnx`` file. ADC rates are set to fractional values in
the trained range (``--rates``, default 0.5-3: each layer's rate regressor
gets a zero last-layer weight and a random bias, deterministic with
``--seed``), since the initial rate 1 can take fast paths that trained
models never take. Both models run the forward only (``mode='tensor'``, no
gradients) on one random input, timed in turns (round ``i`` runs every
model in every runtime once), so that a slow phase of a shared machine hits
both alike; the report gives per runtime each model's median and spread
(min, max) and the ratio B/A (median over rounds of the per-round ratio).
``--op-profile`` adds where each model spends its onnxruntime time: after
the timed rounds, each runs ``--rounds`` more times in a session of its
own with onnxruntime's profiler on, and the report gives its kernel time
per operator type (:mod:`mmadc.deployment.onnxruntime_profile`).

Examples::

    # SimpleBaseline-ResNet-50 against its ADC model, ONNX Runtime and
    # eager PyTorch, 2 threads, batch 1, the configs' 256x192
    python tools/analysis/benchmark_deploy.py \\
        configs/pose/td-hm_res50_4xb32-140e_coco-256x192.py \\
        configs/pose/td-hm_res50-adc_4xb32-140e_coco-256x192.py \\
        --threads 2 --json report.json
    # two exported files, ONNX Runtime only
    python tools/analysis/benchmark_deploy.py a.onnx b.onnx \\
        --runtime onnxruntime --shape 256 192
    # and where each spends its onnxruntime time, per operator type
    python tools/analysis/benchmark_deploy.py a.onnx b.onnx \\
        --runtime onnxruntime --op-profile
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import torch

from mmadc.analysis.benchmarking import (emit_report, median_ratio,
                                         time_rounds_ms)

RUNTIMES = ('onnxruntime', 'torch')
MODEL_ARGS = ('CONFIG_A', 'CONFIG_B')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='benchmark_deploy',
        description='Time two models (configs or .onnx files) in ONNX '
        'Runtime and eager PyTorch, interleaved, and report B/A.')
    parser.add_argument(
        'model_a',
        metavar='CONFIG_A',
        help='the reference model: an mmpose/mmseg config or an .onnx file')
    parser.add_argument(
        'model_b', metavar='CONFIG_B', help='the model compared with it')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        default=None,
        help="input height and width (default: the configs' input size, or "
        "the .onnx file's)")
    parser.add_argument('--batch', type=int, default=1, help='batch size')
    parser.add_argument(
        '--runtime',
        default=','.join(RUNTIMES),
        help='comma-separated runtimes to time: onnxruntime, torch '
        '(default: both; torch needs configs)')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='CPU threads of onnxruntime (intra-op) and torch')
    parser.add_argument('--rounds', type=int, default=9, help='timed rounds')
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed runs per model')
    parser.add_argument(
        '--rates',
        type=float,
        nargs=2,
        metavar=('LOW', 'HIGH'),
        default=(0.5, 3.0),
        help='ADC rates are drawn uniformly from [LOW, HIGH] (default 0.5 3)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--work-dir',
        default=None,
        help='where the exported .onnx files are kept (default: a temporary '
        'folder, removed afterwards)')
    parser.add_argument(
        '--op-profile',
        action='store_true',
        help='also profile each model in onnxruntime after the timed rounds '
        '(--rounds runs, a session of its own) and report its kernel time '
        'per operator type')
    parser.add_argument(
        '--json',
        nargs='?',
        const='-',
        default=None,
        metavar='FILE',
        help='write the report as JSON to FILE (and print the table), or '
        'with no FILE print exactly one JSON object on stdout')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> List[str]:
    """Validate ``args`` before anything is built; return the runtimes.

    Raises:
        SystemExit: One line naming the argument.
    """
    runtimes = [r.strip() for r in args.runtime.split(',') if r.strip()]
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if not runtimes or unknown:
        raise SystemExit(f'--runtime: expected a comma-separated list of '
                         f"{', '.join(RUNTIMES)}, got {args.runtime!r}")
    for name in ('batch', 'rounds'):
        if getattr(args, name) < 1:
            raise SystemExit(f'--{name} must be >= 1, got '
                             f'{getattr(args, name)}')
    if args.warmup < 0:
        raise SystemExit(f'--warmup must be >= 0, got {args.warmup}')
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f'--threads must be >= 1, got {args.threads}')
    low, high = args.rates
    if not 0 <= low <= high:
        raise SystemExit(f'--rates: expected 0 <= LOW <= HIGH, got {low} '
                         f'{high}')
    if args.shape is not None and min(args.shape) < 1:
        raise SystemExit(f'--shape: expected two positive sizes H W, got '
                         f'{args.shape[0]} {args.shape[1]}')
    for label, path in zip(MODEL_ARGS, (args.model_a, args.model_b)):
        if not osp.isfile(path):
            raise SystemExit(f'{label}: no such file: {path}')
        if path.endswith('.onnx') and 'torch' in runtimes:
            raise SystemExit(f'--runtime: torch needs a config, but '
                             f'{label} is an .onnx file: {path} (pass '
                             '--runtime onnxruntime)')
    if args.op_profile and 'onnxruntime' not in runtimes:
        raise SystemExit(f'--op-profile: profiles onnxruntime, which '
                         f'--runtime {args.runtime} does not run (add '
                         'onnxruntime)')
    if 'onnxruntime' in runtimes:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise SystemExit('--runtime: onnxruntime is not installed '
                             "(pip install -e '.[deploy]')") from None
    return runtimes


def set_fractional_rates(model: torch.nn.Module, low: float, high: float,
                         seed: int) -> int:
    """Give every ADC layer of ``model`` constant rates drawn from
    ``[low, high]``: zero last-layer weight of the rate regressor (the rates
    do not depend on the input) and a uniform random bias.

    Returns:
        int: The number of ADC layers.
    """
    from mmadc.ops import AdaptiveDilatedConv2d
    gen = torch.Generator().manual_seed(seed)
    layers = [
        m for m in model.modules() if isinstance(m, AdaptiveDilatedConv2d)
    ]
    with torch.no_grad():
        for layer in layers:
            fc2 = layer.rate_regressor.fc2
            fc2.weight.zero_()
            fc2.bias.copy_(
                torch.rand(fc2.bias.shape, generator=gen) * (high - low) + low)
    return len(layers)


def _rate_range(model: torch.nn.Module) -> Optional[List[float]]:
    """Smallest and largest rate of the last forward (None without ADC)."""
    from mmadc.ops import AdaptiveDilatedConv2d
    rates = [
        m.last_rates for m in model.modules()
        if isinstance(m, AdaptiveDilatedConv2d) and m.last_rates is not None
    ]
    if not rates:
        return None
    return [
        min(float(r.min()) for r in rates),
        max(float(r.max()) for r in rates)
    ]


def _onnx_input_shape(path: str) -> List:
    from mmadc.deployment.onnx_export import onnxruntime_session
    return list(onnxruntime_session(path).get_inputs()[0].shape)


def prepare_model(label: str, path: str, args: argparse.Namespace,
                  runtimes: Sequence[str], work_dir: str) -> dict:
    """Build (config) or load (``.onnx``) one model.

    Returns:
        dict: ``info`` for the report, ``shape``, and where they apply the
        eager ``module`` and the ``onnx`` file.
    """
    info = dict(
        source=path,
        onnx=None,
        onnx_max_error=None,
        adc_layers=None,
        rates=None)
    if path.endswith('.onnx'):
        dims = _onnx_input_shape(path)
        static = len(dims) == 4 and all(isinstance(d, int) for d in dims[2:])
        if args.shape is None and not static:
            raise SystemExit(f'--shape: required, {label} ({path}) has no '
                             f'static input size: {dims}')
        shape = tuple(args.shape) if args.shape else tuple(dims[2:])
        if isinstance(dims[0], int) and dims[0] != args.batch:
            raise SystemExit(f'--batch: {label} ({path}) takes batch '
                             f'{dims[0]} only, got {args.batch}')
        info['onnx'] = path
        return dict(info=info, shape=shape, module=None, onnx=path)
    from mmadc.deployment.onnx_export import (ExportError, TensorForward,
                                              build_model, default_shape,
                                              export_onnx)
    torch.manual_seed(args.seed)  # the same initial weights every run
    try:
        model, cfg = build_model(path, None)
    except ExportError as err:
        raise SystemExit(f'{label}: {err}') from None
    shape = tuple(args.shape) if args.shape else default_shape(cfg)
    if shape is None:
        raise SystemExit(f'--shape: required, {label} ({path}) names no '
                         'input size')
    info['adc_layers'] = set_fractional_rates(model, *args.rates, args.seed)
    module = TensorForward(model).eval()
    onnx_file = None
    if 'onnxruntime' in runtimes:
        onnx_file = osp.join(work_dir, f'{label.lower()}.onnx')
        from mmadc.deployment.onnx_export import check_with_onnxruntime
        try:
            # a batch other than 1 needs a symbolic batch (torch.export
            # specialises 1)
            example = export_onnx(
                model, shape, onnx_file, dynamic_batch=args.batch != 1)
        except ExportError as err:
            raise SystemExit(f'{label}: {err}') from None
        info['onnx'] = onnx_file
        info['onnx_max_error'] = check_with_onnxruntime(
            model, onnx_file, example)
    with torch.no_grad():
        module(torch.zeros(1, 3, *shape))
    info['rates'] = _rate_range(model)
    return dict(info=info, shape=shape, module=module, onnx=onnx_file)


def _timers(models: Dict[str, dict], runtimes: Sequence[str],
            inputs: torch.Tensor, threads: Optional[int]) -> dict:
    """``'<runtime>/<A|B>'``: a function running that model once."""
    fns = {}
    for runtime in runtimes:
        for key, model in models.items():
            if runtime == 'onnxruntime':
                # timed in turns with eager torch: no busy-waiting
                from mmadc.deployment.onnx_export import onnxruntime_session
                session = onnxruntime_session(
                    model['onnx'], threads, spinning=False)
                feed = {session.get_inputs()[0].name: inputs.numpy()}
                fns[f'{runtime}/{key}'] = (
                    lambda s=session, f=feed: s.run(None, f))
            else:
                module = model['module']

                def forward(m=module):
                    with torch.no_grad():
                        m(inputs)

                fns[f'{runtime}/{key}'] = forward
    return fns


def summarise(times: Dict[str, List[float]],
              runtimes: Sequence[str]) -> List[dict]:
    """Per runtime: each model's median, min and max over rounds, and the
    ratio B/A per round (its median, min and max)."""
    results = []
    for runtime in runtimes:
        a, b = times[f'{runtime}/A'], times[f'{runtime}/B']
        ratios = [y / x for x, y in zip(a, b)]
        results.append(
            dict(
                runtime=runtime,
                a_ms=_spread(a),
                b_ms=_spread(b),
                ratio=median_ratio(b, a),
                ratio_min=min(ratios),
                ratio_max=max(ratios)))
    return results


def _spread(values: List[float]) -> dict:
    return dict(
        median=statistics.median(values),
        min=min(values),
        max=max(values),
        rounds=list(values))


def cpu_name() -> dict:
    """The CPU's model name and whether it has AVX-512 (Linux), for the
    report: the figures depend on the CPU kind."""
    name, avx512 = None, None
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if name is None and line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                if avx512 is None and line.startswith('flags'):
                    avx512 = 'avx512f' in line.split()
    except OSError:
        pass
    return dict(model=name, avx512=avx512, cores=os.cpu_count())


def benchmark(args: argparse.Namespace) -> dict:
    runtimes = check_args(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from mmengine.logging import MMLogger

    # keep init_weights' per-parameter report off stdout (and --json)
    MMLogger.get_instance('mmengine', log_level='WARNING')
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = args.work_dir or tmp
        os.makedirs(work_dir, exist_ok=True)
        models = {}
        for key, label, path in zip('AB', MODEL_ARGS,
                                    (args.model_a, args.model_b)):
            models[key] = prepare_model(label, path, args, runtimes, work_dir)
        if models['A']['shape'] != models['B']['shape']:
            raise SystemExit(f'--shape: the models take different input '
                             f"sizes, {models['A']['shape']} and "
                             f"{models['B']['shape']}; pass one")
        shape = models['A']['shape']
        torch.manual_seed(args.seed)
        inputs = torch.randn(args.batch, 3, *shape)
        fns = _timers(models, runtimes, inputs, args.threads)
        times = time_rounds_ms(fns, torch.device('cpu'), args.rounds,
                               args.warmup)
        profiles = _op_profiles(models, inputs, args) if args.op_profile \
            else None
    versions = dict(torch=torch.__version__)
    if 'onnxruntime' in runtimes:
        import onnxruntime
        versions['onnxruntime'] = onnxruntime.__version__
    return dict(
        setup=dict(
            batch=args.batch,
            shape=list(shape),
            runtimes=runtimes,
            threads=args.threads,
            torch_threads=torch.get_num_threads(),
            rounds=args.rounds,
            warmup=args.warmup,
            rates=list(args.rates),
            seed=args.seed,
            cpu=cpu_name(),
            **versions),
        models=dict(A=models['A']['info'], B=models['B']['info']),
        results=summarise(times, runtimes),
        **({} if profiles is None else dict(op_profile=profiles)))


def _op_profiles(models: Dict[str, dict], inputs: torch.Tensor,
                 args: argparse.Namespace) -> Dict[str, dict]:
    """``A`` and ``B``: each model's onnxruntime kernel time per operator
    type over ``--rounds`` runs (after ``--warmup``), with the timing's
    session settings."""
    from mmadc.deployment.onnxruntime_profile import profile_op_types
    return {
        key:
        profile_op_types(
            model['onnx'], [inputs.numpy()],
            args.rounds,
            args.warmup,
            args.threads,
            spinning=False)
        for key, model in models.items()
    }


def print_table(report: dict) -> None:
    setup = report['setup']
    cpu = setup['cpu']
    print(f"cpu={cpu['model']} (avx512: {cpu['avx512']}) threads="
          f"{setup['threads']} batch={setup['batch']} shape="
          f"{setup['shape'][0]}x{setup['shape'][1]} rounds="
          f"{setup['rounds']} (interleaved) rates={setup['rates']}")
    for key in 'AB':
        info = report['models'][key]
        error = ('-' if info['onnx_max_error'] is None else
                 f"{info['onnx_max_error']:.1e}")
        print(f"{key}: {info['source']} (ADC layers: {info['adc_layers']}, "
              f"rates: {info['rates']}, onnxruntime max error: {error})")
    header = (f"{'runtime':<13}{'A ms':>9}{'A min-max':>17}{'B ms':>9}"
              f"{'B min-max':>17}{'B/A':>7}{'B/A min-max':>15}")
    print(header)
    print('-' * len(header))
    for r in report['results']:
        a, b = r['a_ms'], r['b_ms']
        print(f"{r['runtime']:<13}{a['median']:>9.1f}"
              f"{a['min']:>8.1f}-{a['max']:<8.1f}{b['median']:>9.1f}"
              f"{b['min']:>8.1f}-{b['max']:<8.1f}{r['ratio']:>7.2f}"
              f"{r['ratio_min']:>7.2f}-{r['ratio_max']:<7.2f}")
    if 'op_profile' in report:
        print_op_profile(report['op_profile'])


def print_op_profile(profiles: Dict[str, dict]) -> None:
    """The per-operator-type table, the costliest types (in either model)
    first."""
    a, b = profiles['A'], profiles['B']
    print(f"onnxruntime kernel time per operator type (ms per run over "
          f"{b['runs']} profiled runs; nodes):")
    header = (f"{'operator':<22}{'A ms':>9}{'A nodes':>9}{'B ms':>9}"
              f"{'B nodes':>9}{'B-A ms':>9}")
    print(header)
    print('-' * len(header))
    empty = dict(ms=0.0, nodes=0)
    for op in sorted(
            set(a['ops']) | set(b['ops']),
            key=lambda o: -max(b['ops'].get(o, empty)['ms'], a['ops'].get(
                o, empty)['ms'])):
        x, y = a['ops'].get(op, empty), b['ops'].get(op, empty)
        print(f"{op:<22}{x['ms']:>9.2f}{x['nodes']:>9}{y['ms']:>9.2f}"
              f"{y['nodes']:>9}{y['ms'] - x['ms']:>9.2f}")
    for label, field in (('all kernels', 'kernel_ms'), ('run (wall)',
                                                        'run_ms')):
        print(f"{label:<22}{a[field]:>9.2f}{'':>9}{b[field]:>9.2f}{'':>9}"
              f"{b[field] - a[field]:>9.2f}")


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    report = benchmark(args)
    if args.json is None or args.json == '-':
        emit_report(report, args.json == '-', print_table)
        return
    with open(args.json, 'w') as f:
        json.dump(report, f, indent=1)
        f.write('\n')
    print_table(report)


if __name__ == '__main__':
    sys.exit(main())
