# Copyright (c) mmadc contributors. All rights reserved.
"""``tools/analysis/benchmark_model.py``: which baseline each model is
compared with, and ``--amp`` where it cannot run (the training steps
themselves run in ``test_benchmarks.py``)."""
import importlib.util
import os.path as osp

import pytest
from conftest import REPO_ROOT


@pytest.fixture(scope='module')
def benchmark_model():
    path = osp.join(REPO_ROOT, 'tools', 'analysis', 'benchmark_model.py')
    spec = importlib.util.spec_from_file_location('benchmark_model', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_configs_pair_each_backbone_with_its_adc(benchmark_model):
    for path in benchmark_model.DEFAULT_CONFIGS:
        assert osp.isfile(osp.join(REPO_ROOT, path)), path
    assert benchmark_model.DEFAULT_CONFIGS == [
        'configs/pose/td-hm_res50_4xb32-140e_coco-256x192.py',
        'configs/pose/td-hm_res50-adc_4xb32-140e_coco-256x192.py',
        'configs/pose/td-hm_hrnet-w32_4xb32-210e_coco-256x192.py',
        'configs/pose/td-hm_hrnet-w32-adc_4xb32-210e_coco-256x192.py',
    ]


def test_each_adc_model_is_compared_with_its_own_baseline(benchmark_model):
    """HRNet-W32-ADC's ratio is to HRNet-W32, not to ResNet-50."""
    results = [
        dict(config=name, backbone=backbone, images_per_s=ips, memory_mb=mb)
        for name, backbone, ips, mb in (
            ('res50', 'ResNet', 100., 1000.),
            ('res50-adc', 'ResNetADC', 80., 1200.),
            ('hrnet', 'HRNet', 50., 2000.),
            ('hrnet-adc', 'HRNetADC', 40., None),
        )
    ]
    benchmark_model.compare_to_baselines(results)
    assert [r['baseline']
            for r in results] == ['res50', 'res50', 'hrnet', 'hrnet']
    assert [r['throughput_vs_baseline'] for r in results] == [1, .8, 1, .8]
    assert [r['throughput_vs_first'] for r in results] == [1, .8, .5, .4]
    assert results[1]['memory_vs_baseline'] == pytest.approx(1.2)
    assert results[3]['memory_vs_baseline'] is None


def test_amp_on_cpu_exits_with_one_line(benchmark_model):
    """MMEngine's AmpOptimWrapper trains on a GPU only: ``--amp`` without
    ``--device cuda`` stops before any model is built, naming both."""
    args = benchmark_model.parse_args(['--amp', '--device', 'cpu'])
    with pytest.raises(SystemExit) as error:
        benchmark_model.benchmark(args)
    message = str(error.value)
    assert message.startswith('--amp needs --device cuda')
    assert '\n' not in message and message.endswith('--device cpu')
