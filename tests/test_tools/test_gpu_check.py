# Copyright (c) mmadc contributors. All rights reserved.
"""``tools/analysis/gpu_check.py`` and ``gpu_check.sh``: what needs no GPU.

Every section takes a device, so it runs here on CPU (implementations
``reference``, ``native`` and, under Triton's interpreter, ``triton``); the
deform_conv2d offsets the timing uses are checked against ADC; the
torch-only SimpleBaseline of the training section against the plain
torchvision model; the options, the time budget, the report's schema and
the implementation each row names; the whole check in a subprocess where
the OpenMMLab packages cannot be imported (as on the GPU machine); the JSON
report keeps a user's file; without CUDA the command fails with one line
and status 2.
"""
import importlib.util
import itertools
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT

from mmadc.ops import adc_implementation
from mmadc.ops.native_cpu import native_cpu_available

CPU = torch.device('cpu')


@pytest.fixture(scope='module')
def gpu_check():
    path = osp.join(REPO_ROOT, 'tools', 'analysis', 'gpu_check.py')
    spec = importlib.util.spec_from_file_location('gpu_check', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shapes_are_the_backbones_3x3_convs(gpu_check):
    """256x192 input: ResNet-50's bottleneck 3x3 convs (stride 4 stem, the
    first block of stages 2-4 strided) and HRNet-W32's four branches."""
    shapes = {s.name: s for s in gpu_check.benchmark_adc.SHAPES}
    for stage, channels in enumerate((64, 128, 256, 512)):
        size = (64 >> stage, 48 >> stage)
        s = shapes[f'resnet50-stage{stage + 1}']
        assert (s.channels, (s.height, s.width), s.stride) == (channels, size,
                                                               1)
        if stage:
            s = shapes[f'resnet50-stage{stage + 1}-s2']
            assert (s.channels, s.height, s.width,
                    s.stride) == (channels, 2 * size[0], 2 * size[1], 2)
        s = shapes[f'hrnet-w32-branch{stage + 1}']
        assert (s.channels, (s.height, s.width), s.stride) == (32 << stage,
                                                               size, 1)


@pytest.mark.parametrize('groups', [1, 4])
def test_deform_offsets_reproduce_adc(gpu_check, groups):
    """The timing's deform_conv2d computes ADC: values and input, weight and
    rate gradients (through the offsets) agree in float64."""
    args = gpu_check.argparse.Namespace(
        device='cpu', dtype='float64', seed=0, groups=groups, batch=2)
    shape = gpu_check.benchmark_adc.Shape('small', 8, 9, 7, 2)
    case = gpu_check.benchmark_adc.Case(shape, args)
    results = []
    for op in (case.adc, case.deform):
        x, w, r = case.leaves(with_rates=True)
        with adc_implementation('reference'):
            out = op(x, w, r)
        results.append(
            [out, *torch.autograd.grad(out, [x, w, r], case.grad_out)])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # and the offsets are not trivially zero: rates differ from 1
    assert (case.rates - 1).abs().min() > 0


def test_correctness_check_on_cpu(gpu_check):
    """The check passes for the CPU implementations (float32 and bf16
    autocast where they apply), names what computed each row and reports
    the others with their reason."""
    impls = ('reference', 'native') if native_cpu_available() else \
        ('reference', )
    report = gpu_check.correctness(CPU, impls)
    checked = {
        f'{c}/{d}'
        for c in gpu_check.CORRECTNESS_CASES
        for d in gpu_check.TOLERANCE
    }
    assert set(report['reference']) == checked
    if 'native' in impls:  # float32 only: no autocast in the native kernel
        assert report['native']['*/bfloat16']['skipped'].endswith(
            'does not run under autocast; use "auto" or "reference"')
        assert len(report['native']) == len(gpu_check.CORRECTNESS_CASES) + 1
    else:
        assert set(report['native']) == {'*/float32', '*/bfloat16'}
        assert 'without its native CPU kernel' in report['native'][
            '*/float32']['skipped']
    for impl in impls:
        for name, result in report[impl].items():
            if 'skipped' in result:
                continue
            assert result['impl'] == {'native': 'native_cpu'}.get(impl, impl)
            assert result['passed'], (impl, name, result)
            assert set(result['vs_reference']) == {'out', 'x', 'w', 'r', 'b'}
            assert set(result['vs_conv2d_rate1']) == {'out', 'x', 'w', 'b'}
    assert gpu_check.applies(report, 'reference')
    assert not gpu_check.applies(report, 'triton')  # CPU, no interpreter


def test_check_detects_a_wrong_implementation(gpu_check, monkeypatch):
    """A kernel off by a fraction of a pixel fails the check."""
    from mmadc.ops import reference
    forward = reference.forward

    def shifted(input, weight, rates, *args):
        if input.dtype == torch.float64:  # the oracle stays right
            return forward(input, weight, rates, *args)
        return forward(input, weight, rates * 1.01, *args)

    monkeypatch.setattr(reference, 'forward', shifted)
    result = gpu_check.check_case('g1', 'reference', 'float32', CPU)
    assert not result['passed']
    assert result['vs_reference']['out'] > 1e-3


def test_layer_timing_report_on_cpu(gpu_check):
    shape = gpu_check.benchmark_adc.Shape('tiny', 8, 6, 5, 1)
    entry = gpu_check.time_layer(
        shape,
        'float32',
        True, ['reference'],
        CPU,
        batch=1,
        repeat=2,
        warmup=0)
    assert set(entry['ms']) == {'conv', 'deform', 'adc-reference'}
    assert set(entry['over_conv']) == {'deform', 'adc-reference'}
    assert entry['over_conv']['adc-reference'] > 0
    assert entry['layout'] == 'channels_last'
    assert entry['impl'] == {
        'conv': 'F.conv2d',
        'deform': 'torchvision.ops.deform_conv2d',
        'adc-reference': 'reference'
    }
    memory = entry['memory_mb']
    if None not in memory.values():
        assert entry['memory_over_conv']['deform'] == pytest.approx(
            memory['deform'] / memory['conv'])
    skipped = gpu_check.layers(
        CPU, ['reference'], 1, 1, 0, deadline=0., shapes=[shape])
    assert [(e['dtype'], e['layout'])
            for e in skipped] == [(d, lay) for d in ('float32', 'bfloat16')
                                  for lay in ('contiguous', 'channels_last')]
    assert all(e['skipped'] == gpu_check.BUDGET_SPENT for e in skipped)


def test_a_failing_item_is_reported_and_the_check_goes_on(
        gpu_check, monkeypatch):
    """One layer that raises gives a row with its one-line error; the next
    layer is still timed."""
    shapes = [
        gpu_check.benchmark_adc.Shape(name, 4, 5, 4, 1)
        for name in ('bad', 'good')
    ]
    time_layer = gpu_check.time_layer

    def flaky(shape, *args):
        if shape.name == 'bad':
            raise RuntimeError('out of memory\nsecond line')
        return time_layer(shape, *args)

    monkeypatch.setattr(gpu_check, 'time_layer', flaky)
    bad, good = itertools.islice(
        gpu_check.iter_layers(CPU, ['reference'], 1, 1, 0, float('inf'),
                              shapes), 2)
    assert bad['error'] == 'RuntimeError: out of memory'
    assert (bad['shape'], bad['dtype'], bad['layout']) == ('bad', 'float32',
                                                           'contiguous')
    assert 'adc-reference' in good['over_conv']


def _training_row(**kwargs):
    row = dict(
        model='SimpleBaseline-ResNet-50-ADC',
        dtype='float32',
        impl='reference',
        requested='auto',
        images_per_s=10.,
        throughput_vs_baseline=0.9,
        memory_mb=None)
    row.update(kwargs)
    return row


def test_table_prints_every_section(gpu_check, capsys):
    shape = gpu_check.benchmark_adc.Shape('tiny', 4, 5, 4, 1)
    report = dict(
        environment=gpu_check.environment(),
        correctness=gpu_check.correctness(CPU, ('reference', )),
        layers=list(
            itertools.islice(
                gpu_check.iter_layers(CPU, ['reference'], 1, 1, 0,
                                      float('inf'), [shape]), 1)) + [
                                          dict(
                                              shape='late',
                                              dtype='float32',
                                              layout='contiguous',
                                              skipped='time budget')
                                      ],
        training=[
            _training_row(),
            _training_row(dtype='bfloat16', model='all', skipped='budget')
        ])
    assert set(report['environment']) >= {
        'torch', 'torchvision', 'cuda', 'triton', 'device', 'native_cpu_kernel'
    }
    gpu_check.print_table(report)
    text = capsys.readouterr().out
    assert 'g1/float32' in text and 'adc-reference=' in text
    assert 'skipped: time budget' in text and 'skipped: budget' in text
    assert 'reference (--impls auto)' in text and 'x0.90' in text
    assert 'triton' in text and 'not run' in text
    assert 'computed by reference' in text


def test_json_keeps_an_existing_file(gpu_check, tmp_path):
    path = tmp_path / 'sub' / 'report.json'
    gpu_check.write_json({'a': 1}, str(path), overwrite=False)
    assert json.loads(path.read_text()) == {'a': 1}
    with pytest.raises(SystemExit, match='exists; pass --overwrite'):
        gpu_check.write_json({'a': 2}, str(path), overwrite=False)
    gpu_check.write_json({'a': 2}, str(path), overwrite=True)
    assert json.loads(path.read_text()) == {'a': 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ['report.json']


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


def test_arguments(gpu_check, capsys):
    """Defaults are the issue's (batch 32 layers, batch 64 training at
    256x192, 480 s); each bad value exits 2 naming the option."""
    args = gpu_check.parse_args([])
    assert (args.device, args.impls,
            args.budget_s) == ('cuda', ['reference', 'triton'], 480)
    assert (args.batch, args.model_batch, args.model_input) == (32, 64, (256,
                                                                         192))
    assert args.shapes == gpu_check.benchmark_adc.SHAPES
    args = gpu_check.parse_args([
        '--impls', 'triton,auto,triton', '--shapes', 'hrnet-*,resnet50-stage1',
        '--model-input', '64X32', '--budget-s', '1.5'
    ])
    assert args.impls == ['triton', 'auto'] and args.budget_s == 1.5
    assert [s.name for s in args.shapes] == [
        'resnet50-stage1', 'hrnet-w32-branch1', 'hrnet-w32-branch2',
        'hrnet-w32-branch3', 'hrnet-w32-branch4'
    ]
    assert args.model_input == (64, 32)
    for option, value, expected in (
        ('--batch', '0', 'integer >= 1'),
        ('--warmup', '-1', 'integer >= 0'),
        ('--budget-s', '0', 'positive number of seconds'),
        ('--budget-s', 'soon', 'positive number of seconds'),
        ('--impls', 'cuda', 'comma-separated list of auto'),
        ('--shapes', 'vgg*', 'matches no shape'),
        ('--model-input', '250x192', 'multiple of 32'),
        ('--model-input', '256', 'HEIGHTxWIDTH'),
        ('--device', 'tpu', 'invalid choice'),
    ):
        with pytest.raises(SystemExit) as error:
            gpu_check.parse_args([option, value])
        assert error.value.code == 2
        line = _error_line(capsys)
        assert option in line and expected in line, line


def test_without_gpu_one_line_error(gpu_check, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    out = tmp_path / 'report.json'
    with pytest.raises(SystemExit) as error:
        gpu_check.main(['--out', str(out)])
    assert error.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'needs a CUDA GPU' in err
    assert '--device cpu' in err
    assert not out.exists()
    out.write_text('{}')  # a user's file: named, kept
    with pytest.raises(SystemExit) as error:
        gpu_check.main(['--out', str(out), '--device', 'cpu'])
    assert error.value.code == 2
    assert '--out' in _error_line(capsys) and out.read_text() == '{}'


def test_spent_budget_skips_every_item(gpu_check, tmp_path):
    """With the budget gone before the first item, every section lists its
    items as skipped for the budget, and the file holds the report."""
    out = tmp_path / 'report.json'
    args = gpu_check.parse_args([
        '--device', 'cpu', '--out',
        str(out), '--budget-s', '1e-9', '--impls', 'reference', '--shapes',
        'hrnet-w32-branch4'
    ])
    report = gpu_check.run_check(args, CPU)
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    spent = gpu_check.BUDGET_SPENT
    assert {
        k: v['skipped']
        for k, v in report['correctness']['reference'].items()
    } == {
        f'{c}/{d}': spent
        for c in gpu_check.CORRECTNESS_CASES
        for d in gpu_check.TOLERANCE
    }
    assert [(r['dtype'], r['skipped'])
            for r in report['training']] == [('float32', spent),
                                             ('bfloat16', spent)]
    # nothing was checked, so no implementation is timed; layers still list
    # their items
    assert len(report['layers']) == 4
    assert all(e['skipped'] == spent for e in report['layers'])
    shares = gpu_check.SECTION_SHARES
    assert list(report['budget']['sections_end_by_s']) == list(shares)
    assert sorted(shares.values()) == list(shares.values())
    assert max(shares.values()) < 1


def test_interrupt_keeps_the_report(gpu_check, monkeypatch, tmp_path, capsys):
    """SIGINT (gpu_check.sh's timeout) during a section: the report keeps
    what was done and says so; the command ends with one line."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(gpu_check, 'iter_layers', interrupted)
    out = tmp_path / 'report.json'
    args = gpu_check.parse_args(
        ['--device', 'cpu', '--out',
         str(out), '--budget-s', '1e-9'])
    with pytest.raises(SystemExit) as error:
        gpu_check.run_check(args, CPU)
    assert error.value.code == 2
    assert 'stopped by SIGINT' in _error_line(capsys)
    report = json.loads(out.read_text())
    assert report['interrupted'].startswith('stopped by SIGINT')
    assert len(report['training']) == 2  # the sections before are kept


# --- the torch-only model of the training section --------------------------


def test_adc_copy_replaces_exactly_the_bottleneck_3x3_convs():
    """ResNet-50's bottlenecks (3, 4, 6, 3 per stage) each get their conv2
    replaced by an ADC layer of the same geometry and weight; every other
    parameter and buffer is the plain model's, and the plain model keeps
    its convs."""
    from torchvision.models.resnet import Bottleneck

    from mmadc.analysis.simple_baseline import SimpleBaselineResNet50, adc_copy
    from mmadc.ops import AdaptiveDilatedConv2d
    plain = SimpleBaselineResNet50()
    adc = adc_copy(plain)
    expected = {
        f'backbone.layer{stage + 1}.{block}.conv2'
        for stage, blocks in enumerate((3, 4, 6, 3))
        for block in range(blocks)
    }
    replaced = {
        name
        for name, m in adc.named_modules()
        if isinstance(m, AdaptiveDilatedConv2d)
    }
    assert replaced == expected
    plain_modules = dict(plain.named_modules())
    assert not any(
        isinstance(m, AdaptiveDilatedConv2d) for m in plain_modules.values())
    assert sum(isinstance(m, Bottleneck) for m in plain_modules.values()) == 16
    strided = set()
    for name in expected:
        conv, layer = plain_modules[name], dict(adc.named_modules())[name]
        assert type(conv) is torch.nn.Conv2d and conv.kernel_size == (3, 3)
        for attr in ('in_channels', 'out_channels', 'kernel_size', 'stride',
                     'padding', 'dilation'):
            assert getattr(layer, attr) == getattr(conv, attr), (name, attr)
        assert layer.dilation_groups == conv.in_channels  # the paper's g
        if conv.stride == (2, 2):
            strided.add(name)
    # torchvision puts the stride in the 3x3 conv, as mmpose's pytorch style
    assert strided == {f'backbone.layer{s}.0.conv2' for s in (2, 3, 4)}
    plain_state, adc_state = plain.state_dict(), adc.state_dict()
    extra = set(adc_state) - set(plain_state)
    assert set(plain_state) <= set(adc_state)
    assert {k.split('.rate_regressor.')[0] for k in extra} == expected
    for key, value in plain_state.items():
        assert torch.equal(adc_state[key], value), key
    # a copy: training one does not move the other
    with torch.no_grad():
        adc.backbone.layer1[0].conv2.weight.add_(1)
    assert not torch.equal(adc.backbone.layer1[0].conv2.weight,
                           plain.backbone.layer1[0].conv2.weight)


def test_adc_copy_at_initial_rates_computes_the_plain_model():
    """Rates 1 (the start): the ADC model's heatmaps are the plain
    torchvision model's (float64, train mode); rates moved off 1 change
    them, so the ADC layers are on the forward path."""
    from mmadc.analysis.simple_baseline import SimpleBaselineResNet50, adc_copy
    plain = SimpleBaselineResNet50(num_keypoints=5).double()
    adc = adc_copy(plain)
    x = torch.randn(2, 3, 64, 32, dtype=torch.float64)
    want = plain(x)
    assert want.shape == (2, 5, 16, 8)  # heatmaps at 1/4 of the input
    got = adc(x)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    rates = adc.backbone.layer3[1].conv2.last_rates
    assert torch.equal(rates, torch.ones_like(rates))
    with torch.no_grad():
        adc.backbone.layer3[1].conv2.rate_regressor.fc2.bias.fill_(1.5)
    assert (adc(x) - want).abs().max() > 1e-3 * want.abs().max()


# --- torch only: OpenMMLab hidden, in a subprocess ---------------------------

# Makes the OpenMMLab packages look uninstalled: every meta-path finder is
# wrapped so that it finds none of them, hence ``import mmengine`` raises
# ModuleNotFoundError and ``importlib.util.find_spec('mmengine')`` is None,
# as where they are not installed (a finder that raised instead would also
# break ``find_spec``, which mmadc uses to tell whether MMEngine is there).
HIDE_OPENMMLAB = '''
import sys
HIDDEN = ('mmengine', 'mmcv', 'mmpose', 'mmseg', 'mmdet')


class Hidden:

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in HIDDEN:
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.finder, attr)


sys.meta_path[:] = [Hidden(f) for f in sys.meta_path]
for name in HIDDEN:
    try:
        __import__(name)
    except ImportError:
        continue
    raise AssertionError(name + ' is still importable')
'''

TOOL = osp.join(REPO_ROOT, 'tools', 'analysis', 'gpu_check.py')


def _run_hidden(script: str, cwd, triton_interpret: bool = False, **env):
    """``script`` after :data:`HIDE_OPENMMLAB`, in a fresh interpreter that
    finds mmadc through PYTHONPATH (a plain checkout, as on the GPU
    machine), from ``cwd``; the OpenMMLab modules it loaded are printed
    last."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='2', **env)
    env.pop('TRITON_INTERPRET', None)
    if triton_interpret:
        env['TRITON_INTERPRET'] = '1'
    code = HIDE_OPENMMLAB + script + ('\nprint(sorted(m for m in sys.modules '
                                      "if m.partition('.')[0] in HIDDEN))\n")
    return subprocess.run([sys.executable, '-c', code],
                          cwd=str(cwd),
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=600)


def _cli(argv) -> str:
    return (f'sys.argv = {[TOOL] + argv!r}\n'
            'import runpy\n'
            f'runpy.run_path({TOOL!r}, run_name="__main__")\n')


def test_torch_only_without_gpu_one_line_error(tmp_path):
    """Without OpenMMLab the tool gets past its imports and stops at the
    missing GPU with one line and status 2."""
    proc = _run_hidden(
        _cli(['--out', str(tmp_path / 'r.json')]),
        tmp_path,
        CUDA_VISIBLE_DEVICES='')
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count('\n') == 1, proc.stderr
    assert proc.stderr.startswith('gpu_check.py: error: needs a CUDA GPU')
    assert not (tmp_path / 'r.json').exists()


@pytest.mark.slow
def test_torch_only_run_on_cpu(tmp_path):
    """The whole check on CPU with OpenMMLab hidden (tiny sizes): the report
    has every section, every row names the implementation that computed it
    by the documented rules (``auto``: the native kernel for float32 where
    it was built, the reference otherwise; ``triton`` needs a GPU or the
    interpreter), and no OpenMMLab module was loaded."""
    out = tmp_path / 'out' / 'report.json'
    proc = _run_hidden(
        _cli([
            '--device', 'cpu', '--out',
            str(out), '--impls', 'auto,triton', '--shapes',
            'hrnet-w32-branch4', '--batch', '1', '--repeat', '1', '--warmup',
            '0', '--model-batch', '1', '--model-input', '64x32', '--steps',
            '1', '--model-warmup', '1'
        ]), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == '[]'  # nothing loaded
    assert f'written to {out}' in proc.stdout
    report = json.loads(out.read_text())
    env = report['environment']
    assert env['device'].startswith('cpu') and not env['triton_interpret']

    def expected(dtype):
        native = env['native_cpu_kernel'] and dtype == 'float32'
        return 'native_cpu' if native else 'reference'

    correctness = report['correctness']
    assert set(correctness['auto']) == {
        f'{c}/{d}'
        for c in ('g1', 'gC-stride2', 'g4-channels_last')
        for d in ('float32', 'bfloat16')
    }
    for key, row in correctness['auto'].items():
        assert row['passed'] and row['impl'] == expected(key.split('/')[1])
    assert set(correctness['triton']) == {'*/float32', '*/bfloat16'}
    for skipped in correctness['triton'].values():  # CPU, no interpreter
        assert skipped['skipped'].startswith(
            'ADC implementation "triton" requested but ')

    rows = [(r['dtype'], r['model'], r['impl']) for r in report['training']]
    assert rows == [(d, m, i) for d in ('float32', 'bfloat16')
                    for m, i in (('SimpleBaseline-ResNet-50',
                                  None), ('SimpleBaseline-ResNet-50-ADC',
                                          expected(d)))]
    for base, adc in zip(report['training'][::2], report['training'][1::2]):
        assert base['throughput_vs_baseline'] == 1
        assert adc['requested'] == 'auto' and adc['input'] == '64x32'
        for r in (base, adc):
            assert r['images_per_s'] == pytest.approx(1e3 / r['step_ms'])

    assert [(e['dtype'], e['layout']) for e in report['layers']
            ] == [(d, lay) for d in ('float32', 'bfloat16')
                  for lay in ('contiguous', 'channels_last')]
    for e in report['layers']:
        assert e['shape'] == 'hrnet-w32-branch4'
        assert e['impl']['adc-auto'] == expected(e['dtype'])
        assert set(e['over_conv']) == {'deform', 'adc-auto'}
    assert report['seconds'] < report['budget']['budget_s']
    assert 'training step' in proc.stdout and 'layers' in proc.stdout


def _triton_interpreter_missing():
    try:
        import triton
    except ImportError:
        return 'triton is not installed'
    if int(triton.__version__.split('.')[0]) < 3:
        return f'the kernels need triton >= 3.0, found {triton.__version__}'
    if not hasattr(torch.library, 'custom_op'):
        return 'the registered op needs torch >= 2.4'
    return None


@pytest.mark.skipif(
    _triton_interpreter_missing() is not None,
    reason=str(_triton_interpreter_missing()))
def test_triton_rows_name_triton(tmp_path):
    """Under the interpreter (the CPU stand-in for a GPU), the rows of
    ``triton`` say ``triton`` and pass the check, and ``auto`` does not take
    the Triton kernels (the CUDA default stays the reference)."""
    script = f'''
import json
sys.path.insert(0, {osp.dirname(TOOL)!r})
import torch
import gpu_check as g
cpu = torch.device('cpu')
case = g.check_case('g1', 'triton', 'float32', cpu)
entry = g.time_layer(g.benchmark_adc.Shape('tiny', 4, 5, 4, 1), 'bfloat16',
                     True, ['triton', 'auto'], cpu, 1, 1, 0)
print(json.dumps(dict(case=case, impl=entry['impl'])))
'''
    proc = _run_hidden(script, tmp_path, triton_interpret=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    *_, result, loaded = proc.stdout.strip().splitlines()
    assert loaded == '[]'
    result = json.loads(result)
    assert result['case']['impl'] == 'triton' and result['case']['passed']
    assert result['impl']['adc-triton'] == 'triton'
    assert result['impl']['adc-auto'] == 'reference'  # bf16 autocast


# --- gpu_check.sh ------------------------------------------------------------

SCRIPT = osp.join(REPO_ROOT, 'tools', 'analysis', 'gpu_check.sh')


def _run_script(args, cwd, **env):
    full_env = dict(os.environ, PYTHON=sys.executable, **env)
    full_env.pop('PYTHONPATH', None)  # the script sets it: a plain checkout
    return subprocess.run(['bash', SCRIPT, *args],
                          cwd=str(cwd),
                          env=full_env,
                          capture_output=True,
                          text=True,
                          timeout=300)


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize('args', [[], [''], ['--budget-s', '60']])
def test_script_without_out_dir_prints_usage(args, tmp_path):
    proc = _run_script(args, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith('usage: tools/analysis/gpu_check.sh OUT_DIR')
    assert proc.stderr.count('\n') == 1 and not list(tmp_path.iterdir())


def test_script_names_the_out_option_it_sets(tmp_path):
    proc = _run_script([str(tmp_path / 'o'), '--out', 'x.json'], tmp_path)
    assert proc.returncode == 2 and '--out' in proc.stderr
    assert proc.stderr.count('\n') == 1


def test_script_without_gpu_logs_one_line(tmp_path):
    """From another directory and without PYTHONPATH: the tool starts, and
    its one-line error is both printed and in OUT_DIR's log."""
    out_dir = tmp_path / 'new' / 'dir'
    proc = _run_script([str(out_dir), '--budget-s', '30'],
                       tmp_path,
                       CUDA_VISIBLE_DEVICES='')
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = 'gpu_check.py: error: needs a CUDA GPU'
    assert proc.stdout.startswith(line) and proc.stdout.count('\n') == 1
    log = (out_dir / 'gpu_check.log').read_text().splitlines()
    assert log[0].startswith('gpu_check.sh: ') and 'after 90 s' in log[0]
    assert len(log) == 2 and log[1].startswith(line)
    assert sorted(p.name for p in out_dir.iterdir()) == ['gpu_check.log']
