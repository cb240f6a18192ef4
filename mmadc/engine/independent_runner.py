# Copyright (c) mmadc contributors. All rights reserved.
"""Build MMEngine Runners that share nothing with the Runners built before
them in the same process.

MMEngine names a Runner's logger, message hub, visualizer and default scope
after its experiment name, ``<config file name>_<timestamp>`` (the timestamp
alone for a config without a file name), to the second, and
``ManagerMixin.get_instance`` returns the instance already made under a
name. A second Runner built in the same second in one process therefore
gets the first one's: a visualizer that writes into the earlier run's
folder (``FileNotFoundError: .../vis_data/config.py`` once that folder is
gone), its log file, its message hub (iterations, log scalars) and its
default scope (possibly another codebase's). A visualizer config with a
fixed ``name`` (mmpose's and mmseg's ``default_runtime`` give
``'visualizer'``) shares the first one's whatever the experiment name.
"""
import copy
import itertools
import os.path as osp

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

# Runners built through build_independent_runner in this process; a
# counter, not a clock, so that two Runners within a second differ too.
_runners_built = itertools.count(1)


def build_independent_runner(cfg: Config) -> Runner:
    """Build the Runner of ``cfg`` under an experiment name of its own.

    The ``n``-th Runner built here in a process is named ``<name>_run<n>``
    before MMEngine appends the timestamp (``<name>``: ``experiment_name``
    of the config, else its file name, else ``run<n>`` alone), so its
    logger, message hub, visualizer and default scope are new instances,
    even within the same second as an earlier Runner, one built here or
    one MMEngine named itself. A fixed visualizer ``name`` is dropped, so
    that MMEngine names the visualizer after the experiment too; hooks
    reach it through ``get_current_instance()``, not by name.

    Args:
        cfg (Config): The Runner's config (not modified). ``runner_type``
            selects the Runner class as in ``tools/train.py``.

    Returns:
        Runner: The Runner.
    """
    number = next(_runners_built)
    cfg = copy.deepcopy(cfg)
    name = cfg.get('experiment_name')
    if name is None and cfg.filename is not None:
        name = osp.splitext(osp.basename(cfg.filename))[0]
    cfg.experiment_name = f'{name}_run{number}' if name else f'run{number}'
    if isinstance(cfg.get('visualizer'), dict):
        cfg.visualizer.pop('name', None)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
