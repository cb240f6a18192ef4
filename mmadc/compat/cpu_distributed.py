# Copyright (c) mmadc contributors. All rights reserved.
"""Let ``--launcher pytorch`` (torchrun) train and test on CPUs.

mmengine 0.10.7's pytorch launcher calls ``torch.cuda.set_device`` and wraps
the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail on a machine
without GPUs. For such runs this module starts the process group itself with
gloo (mmengine then skips its own start) and asks for DDP without device
ids, which is how DDP runs on CPUs. GPU runs are left untouched.
"""
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a CPU-only ``launcher='pytorch'`` run; no-op otherwise.

    Args:
        cfg (Config): The run's config; ``cfg.launcher`` must already be
            set. Its ``model_wrapper_cfg`` is updated in place.

    Returns:
        bool: Whether the run was set up for CPU distributed training.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
        if backend not in (None, 'gloo'):
            print_log(
                f'env_cfg.dist_cfg.backend={backend!r} needs GPUs; using '
                '"gloo" on this CPU-only machine',
                logger='current')
        # torchrun provides MASTER_ADDR/PORT, RANK and WORLD_SIZE (env://)
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    return True
