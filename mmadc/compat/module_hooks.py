# Copyright (c) mmadc contributors. All rights reserved.
"""``nn.Module.register_load_state_dict_pre_hook`` on every supported torch.

The public method arrived in torch 2.2; torch 2.1 has only the private
``_register_load_state_dict_pre_hook(hook, with_module=True)``, which calls
the hook with the same arguments.
"""
from typing import Callable

from torch import nn
from torch.utils.hooks import RemovableHandle


def register_load_state_dict_pre_hook(module: nn.Module,
                                      hook: Callable) -> RemovableHandle:
    """Call ``hook(module, state_dict, prefix, local_metadata, strict,
    missing_keys, unexpected_keys, error_msgs)`` before ``module`` loads
    its part of any ``load_state_dict``.

    Args:
        module (nn.Module): The module to watch.
        hook (Callable): The hook.

    Returns:
        RemovableHandle: ``handle.remove()`` unregisters the hook.
    """
    public = getattr(module, 'register_load_state_dict_pre_hook', None)
    if public is not None:
        return public(hook)
    return module._register_load_state_dict_pre_hook(hook, with_module=True)
