# Copyright (c) mmadc contributors. All rights reserved.
"""The model zoo metadata, read by mim's own loader (what ``mim search``
runs): every config listed, every listed config present, results only for
the configs this repository measured; the COCO test-dev configs."""
import glob
import os.path as osp

import pytest
from conftest import REPO_ROOT

MEASURED = {  # README, "What the demo reaches"
    'td-hm_res18_1xb32-40e_synthetic-coco-128x96': 0.119,
    'td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96': 0.097,
    'fcn_r18-d8_1xb4-200iter_synthetic-cityscapes-128x128': 31.42,
    'fcn_r18-d8-adc_1xb4-200iter_synthetic-cityscapes-128x128': 30.49,
}
ADC_PAPER = 'Adaptive Dilated Convolution For Human Pose Estimation'


@pytest.fixture(scope='module')
def models():
    import os

    from mim.commands.search import convert2df
    from modelindex.load_model_index import load
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)  # the index names files relative to the root
    try:
        return convert2df(load('model-index.yml')).to_dict('index')
    finally:
        os.chdir(cwd)


def test_every_config_is_listed_and_exists(models):
    configs = sorted(
        osp.relpath(p, REPO_ROOT)
        for p in glob.glob(osp.join(REPO_ROOT, 'configs', '*', '*.py')))
    assert sorted(m['config'] for m in models.values()) == configs
    for name, model in models.items():
        assert osp.basename(model['config']) == name + '.py'
        assert isinstance(model['architecture'], str)
        assert isinstance(model['training_data'], str)
        assert isinstance(model['paper'], str)
        assert isinstance(model.get('input_size'), str) or isinstance(
            model.get('crop_size'), str)
        is_adc = 'adc' in model['architecture'].split(',')
        assert is_adc == ('-adc' in name)
        if is_adc:
            assert model['paper'] == ADC_PAPER


def test_results_only_where_measured(models):
    for name, model in models.items():
        results = {
            k: v
            for k, v in model.items() if '/' in k and v == v
        }  # NaN: no result
        if name in MEASURED:
            assert list(results.values()) == [MEASURED[name]]
        else:
            assert not results, name


@pytest.mark.parametrize('name', [
    'td-hm_res50_4xb32-140e_coco-256x192',
    'td-hm_res50-adc_4xb32-140e_coco-256x192',
    'td-hm_hrnet-w32_4xb32-210e_coco-256x192',
    'td-hm_hrnet-w32-adc_4xb32-210e_coco-256x192',
])
def test_test_dev_config(name):
    """Each test-dev config is its val config with the test split replaced
    by test-dev and a results file instead of metrics."""
    from mmengine.config import Config
    base = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'pose', name + '.py'))
    dev = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'pose',
                 name.replace('_coco-', '_coco-test-dev-') + '.py'))
    for key in ('model', 'train_dataloader', 'val_dataloader', 'val_evaluator',
                'optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert dev[key] == base[key], key
    dataset = dev.test_dataloader.dataset
    assert dataset.ann_file == 'annotations/image_info_test-dev2017.json'
    assert dataset.data_prefix == dict(img='test2017/')
    assert dataset.bbox_file.endswith(
        'COCO_test-dev2017_detections_AP_H_609_person.json')
    assert dataset.pipeline == base.test_dataloader.dataset.pipeline
    assert dev.test_evaluator.type == 'CocoMetric'
    assert dev.test_evaluator.format_only is True
    assert dev.test_evaluator.outfile_prefix.startswith('work_dirs/')


def test_mim_search_finds_the_installed_index(models):
    """`mim search mmadc` in this environment (the README's editable
    install, after setup_env.sh's `mim_tools install`, or a regular one)
    lists every model of the repository's model-index.yml."""
    from mim.commands.search import load_metadata_from_local
    index = load_metadata_from_local('mmadc')
    assert sorted(m.name for m in index.models) == sorted(models)
