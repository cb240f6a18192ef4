# Copyright (c) mmadc contributors. All rights reserved.
"""``register_load_state_dict_pre_hook`` calls the hook with the module,
on torch versions with the public method (>= 2.2) and on torch 2.1's
private one alike."""
import pytest
import torch
from torch import nn

from mmadc.compat.module_hooks import register_load_state_dict_pre_hook


class _LegacyLinear(nn.Linear):
    """A module as torch 2.1 builds it: no public pre-hook method."""
    register_load_state_dict_pre_hook = None


@pytest.mark.parametrize(
    'child_type', [nn.Linear, _LegacyLinear], ids=['public', 'private'])
def test_hook_sees_module_prefix_and_state(child_type):
    model = nn.Sequential(nn.ReLU(), child_type(2, 3))
    calls = []

    def hook(module, state_dict, prefix, *args):
        calls.append((module, prefix, sorted(state_dict)))

    handle = register_load_state_dict_pre_hook(model[1], hook)
    state = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert calls == [(model[1], '1.', ['1.bias', '1.weight'])]
    assert torch.equal(model[1].weight, torch.ones(3, 2))
    handle.remove()
    model.load_state_dict(state)
    assert len(calls) == 1
