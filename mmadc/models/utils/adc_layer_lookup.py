# Copyright (c) mmadc contributors. All rights reserved.
"""Find the ADC layers of a model and name them by stage and block.

Hooks, metrics and analysis tools all address a model's
:class:`~mmadc.ops.AdaptiveDilatedConv2d` layers by their qualified module
names; the stage (``layer1`` .. ``layer4`` in ResNets, ``layer1`` /
``stage2`` .. ``stage4`` in HRNet) and the block are read from those names,
so that every report groups and titles the layers the same way.
"""
import re
from collections import OrderedDict
from typing import List

import torch.nn as nn
from mmengine.model import is_model_wrapper

from mmadc.ops import AdaptiveDilatedConv2d

#: A stage is the first name component like ``layer3`` or ``stage2``.
STAGE_PATTERN = r'(?:^|\.)((?:layer|stage)\d+)(?=\.|$)'


def find_adc_layers(model: nn.Module) -> 'OrderedDict[str, nn.Module]':
    """Every :class:`~mmadc.ops.AdaptiveDilatedConv2d` of a model.

    All modules are searched, not only the convs swapped by the ADC blocks
    (:func:`~mmadc.models.backbones.iter_replaced_convs`), so ADC layers
    built through ``conv_cfg=dict(type='ADC')`` are found too; DC and SAC
    layers are skipped (they have no dilation rates).

    Args:
        model (nn.Module): The model (a model wrapper is unwrapped first,
            so names carry no ``module.`` prefix).

    Returns:
        OrderedDict[str, nn.Module]: Qualified name (e.g.
        ``'backbone.layer1.0.conv2'``) to layer, in module order.
    """
    if is_model_wrapper(model):
        model = model.module
    return OrderedDict((name, module)
                       for name, module in model.named_modules()
                       if isinstance(module, AdaptiveDilatedConv2d))


def require_adc_layers(model: nn.Module,
                       source: str) -> 'OrderedDict[str, nn.Module]':
    """:func:`find_adc_layers`, raising if there are none.

    Args:
        model (nn.Module): The model.
        source (str): What the model came from, for the error message
            (e.g. the config path).

    Returns:
        OrderedDict[str, nn.Module]: The ADC layers.
    """
    layers = find_adc_layers(model)
    if not layers:
        raise ValueError(
            f'no ADC layers in the model of {source}: use an ADC backbone '
            "(e.g. backbone type 'ResNetADC' or 'HRNetADC') or "
            "conv_cfg=dict(type='ADC')")
    return layers


def layer_stage(name: str, pattern: str = STAGE_PATTERN) -> str:
    """The stage of a layer, read from its qualified name.

    Examples: ``backbone.layer1.2.conv2`` -> ``layer1``;
    ``backbone.stage3.0.branches.1.3.conv2`` -> ``stage3``. Names without a
    match (e.g. an ADC layer in a head) are their own stage.

    Args:
        name (str): Qualified module name.
        pattern (str): Regular expression whose first group is the stage.

    Returns:
        str: The stage.
    """
    match = re.search(pattern, name)
    return match.group(1) if match else name


def _block_path(name: str, pattern: str):
    """The stage match and the name components between the stage and the
    conv (None if the name has no stage)."""
    match = re.search(pattern, name)
    if not match:
        return None, []
    return match, match.string[match.end():].strip('.').split('.')[:-1]


def describe_layer(name: str, pattern: str = STAGE_PATTERN) -> str:
    """A short description ``'<stage> block <b>'`` of a layer.

    ResNet blocks (``layer<s>.<i>.conv2``) get the 1-based block number;
    deeper paths (HRNet's
    ``stage<s>.<module>.branches.<branch>.<block>.conv2``) keep the path
    between the stage and the conv.

    Args:
        name (str): Qualified module name.
        pattern (str): Stage pattern, see :func:`layer_stage`.

    Returns:
        str: E.g. ``'layer1 block 3'`` for ``backbone.layer1.2.conv2``.
    """
    match, rest = _block_path(name, pattern)
    if match is None:
        return name
    if len(rest) == 1 and rest[0].isdigit():
        return f'{match.group(1)} block {int(rest[0]) + 1}'
    return f'{match.group(1)} {".".join(rest)}' if rest else match.group(1)


def adc_layer_title(name: str, pattern: str = STAGE_PATTERN) -> str:
    """The paper's ``ADC_stageID_blockID`` title of a layer (Fig. 6).

    Stage and block numbers are 1-based as in the paper:
    ``backbone.layer3.1.conv2`` -> ``ADC_3_2``. In HRNet, whose stages
    hold modules of branches of blocks, every index of the path is given,
    1-based: ``backbone.stage3.0.branches.1.3.conv2`` -> ``ADC_3_1_2_4``
    (module 1, branch 2, block 4). A name without a numbered stage keeps
    :func:`describe_layer`'s description.

    Args:
        name (str): Qualified module name.
        pattern (str): Stage pattern, see :func:`layer_stage`.

    Returns:
        str: The title.
    """
    match, rest = _block_path(name, pattern)
    stage = re.search(r'\d+$', match.group(1)) if match else None
    indices = [part for part in rest if part.isdigit()]
    if stage is None or not indices:
        return describe_layer(name, pattern)
    return '_'.join(['ADC', stage.group(0)] +
                    [str(int(i) + 1) for i in indices])


def _pairs(value) -> List[int]:
    return list(value) if isinstance(value, (tuple, list)) else [value] * 2


def layer_info(name: str, layer: nn.Module) -> dict:
    """Static description of an ADC layer for reports.

    Args:
        name (str): Qualified name.
        layer (nn.Module): The ADC layer.

    Returns:
        dict: ``stage``, ``block`` (:func:`describe_layer`), ``title``
        (:func:`adc_layer_title`), ``in_channels``, ``dilation_groups``,
        ``channels_per_group``, ``kernel_size``, ``dilation`` (the base
        dilation ``d``).
    """
    groups = int(layer.dilation_groups)
    return dict(
        stage=layer_stage(name),
        block=describe_layer(name),
        title=adc_layer_title(name),
        in_channels=int(layer.in_channels),
        dilation_groups=groups,
        channels_per_group=int(layer.in_channels) // groups,
        kernel_size=_pairs(layer.kernel_size),
        dilation=_pairs(layer.dilation))


def describe_adc_layers(model: nn.Module) -> 'OrderedDict[str, dict]':
    """:func:`layer_info` of every ADC layer of a model, by name.

    Args:
        model (nn.Module): The model.

    Returns:
        OrderedDict[str, dict]: Qualified name to description.
    """
    return OrderedDict((name, layer_info(name, layer))
                       for name, layer in find_adc_layers(model).items())
