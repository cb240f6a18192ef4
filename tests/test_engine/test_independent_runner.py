# Copyright (c) mmadc contributors. All rights reserved.
"""Runners mmadc builds within the same second in one process share nothing
(mmadc.engine.independent_runner). The clock is frozen, so that the two
Runners get the same MMEngine timestamp whatever the machine's speed."""
import os.path as osp
import shutil
import time

import torch
from analysis_helpers import build_pose_model, load_tool, write_pose_config
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmadc.analysis.analysis_runner import build_analysis_runner
from mmadc.engine.independent_runner import build_independent_runner

# 2026-12-01 23:10:40.5 UTC: within one second whatever the time zone
FROZEN_TIME = 1796166640.5


def log_files(logger) -> list:
    """The files a logger writes to."""
    files = (getattr(h, 'baseFilename', None) for h in logger.handlers)
    return [f for f in files if f is not None]


def test_runners_of_one_second_are_independent(tmp_path, monkeypatch):
    """The second Runner writes its vis_data, log and config into its own
    work_dir, with its own global instances, although the first one's folder
    is gone (the CI failure: FileNotFoundError on .../vis_data/config.py)."""
    config = write_pose_config(tmp_path, 'ResNetADC')
    cfg = Config.fromfile(config)
    metric = dict(type='ADCRateSizeMetric')
    monkeypatch.setattr(time, 'time', lambda: FROZEN_TIME)
    works = [str(tmp_path / name) for name in ('first', 'second')]
    first = build_analysis_runner(cfg, metric, works[0], boxes='gt')
    shutil.rmtree(works[0])  # as pytest does with an earlier test's tmp_path
    second = build_analysis_runner(cfg, metric, works[1], boxes='gt')
    assert first.timestamp == second.timestamp  # the frozen clock held
    assert first.experiment_name != second.experiment_name
    for attr in ('visualizer', 'message_hub', 'logger'):
        assert getattr(first, attr) is not getattr(second, attr), attr
    assert DefaultScope.get_instance(first.experiment_name) is not \
        DefaultScope.get_instance(second.experiment_name)
    log_dir = osp.join(works[1], second.timestamp)
    assert second.log_dir == log_dir
    assert osp.isfile(osp.join(log_dir, 'vis_data', 'config.py'))
    log_file = osp.join(log_dir, f'{second.timestamp}.log')
    assert log_files(second.logger) == [log_file]
    assert not osp.exists(works[0])  # nothing written to the first's folder


def test_analysis_tool_twice_in_one_second(tmp_path, monkeypatch):
    """The CI sequence: one analysis, its folder removed, another analysis
    in the same second; the second writes its report."""
    tool = load_tool('rate_statistics')
    config = write_pose_config(tmp_path, 'ResNetADC')
    ckpt = str(tmp_path / 'init.pth')
    torch.save({'state_dict': build_pose_model(config).state_dict()}, ckpt)
    monkeypatch.setattr(time, 'time', lambda: FROZEN_TIME)
    for name in ('first', 'second'):
        out = tmp_path / name
        tool.main([
            config, ckpt, '--out-dir',
            str(out), '--boxes', 'gt', '--max-instances', '2', '--no-plots'
        ])
        assert (out / 'rate_statistics.json').is_file()
        shutil.rmtree(out)


def test_later_runners_get_names_of_their_own(tmp_path, monkeypatch):
    """Runners built through build_independent_runner in one second each
    get an experiment name, so global instances, of their own; the caller's
    config is left as it was."""
    cfg = Config.fromfile(write_pose_config(tmp_path, 'ResNet'))
    cfg.val_dataloader = None  # a Runner of the model alone
    cfg.work_dir = str(tmp_path / 'work')
    monkeypatch.setattr(time, 'time', lambda: FROZEN_TIME)
    runners = [build_independent_runner(cfg) for _ in range(3)]
    names = {runner.experiment_name for runner in runners}
    assert len(names) == 3
    for runner in runners:
        assert runner.visualizer.instance_name == runner.experiment_name
        assert runner.experiment_name.endswith(f'_{runners[0].timestamp}')
    assert 'experiment_name' not in cfg


def test_a_fixed_visualizer_name_is_not_shared(tmp_path):
    """mmpose's and mmseg's default_runtime name the visualizer
    'visualizer'; MMEngine would hand the second Runner the first one's,
    writing into the first folder (the CI failure after an analysis tool
    ran). Each Runner gets its own, saving under its own log_dir."""
    cfg = Config.fromfile(write_pose_config(tmp_path, 'ResNet'))
    cfg.val_dataloader = None
    cfg.visualizer = dict(
        type='PoseLocalVisualizer',
        name='visualizer',
        vis_backends=[dict(type='LocalVisBackend')])
    runners = []
    for name in ('first', 'second'):
        cfg.work_dir = str(tmp_path / name)
        runners.append(build_independent_runner(cfg))
        if name == 'first':
            shutil.rmtree(cfg.work_dir)
    first, second = runners
    assert first.visualizer is not second.visualizer
    assert second.visualizer.instance_name == second.experiment_name
    assert osp.isfile(osp.join(second.log_dir, 'vis_data', 'config.py'))
    assert cfg.visualizer.name == 'visualizer'  # the caller's config kept
