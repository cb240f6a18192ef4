# Copyright (c) mmadc contributors. All rights reserved.
"""The one mechanism that puts ADC (or DC / SAC) into residual blocks.

mmpose's and mmseg's residual blocks build their 3x3 convolution as an
attribute (``conv2``) with ``build_conv_layer``. Rather than copying their
block and backbone code, mmadc rebuilds that attribute from a layer config
(``adc_cfg``) with the hyper-parameters and weights of the conv it replaces.
Every other weight of the block keeps its module and its state-dict key, and
the replaced conv's ``weight``/``bias`` keep theirs (``conv2.weight``), so
the ImageNet checkpoints of the baseline configs load unchanged and every
replaced layer starts as the conv it replaces. Blocks and backbones of
either library opt in through mixins placed first among their bases; this
module imports neither mmpose nor mmseg.
"""
import copy
import inspect
from typing import Dict, Iterator, Optional, Sequence, Set, Tuple, Type, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer
from mmengine.registry import MODELS

from mmadc.compat.module_hooks import register_load_state_dict_pre_hook

#: ``adc_cfg`` type names that always resolve to mmadc's layers. The root
#: registry's ``'SAC'`` belongs to mmcv's *switchable* atrous convolution
#: (DetectoRS, used by mmdet); overriding it globally would break mmdet, so
#: only the swapping mechanism maps ``'SAC'`` to the paper's scale-adaptive
#: convolution (registered as ``'ScaleAdaptiveConv2d'``).
LAYER_ALIASES: Dict[str, str] = {'SAC': 'ScaleAdaptiveConv2d'}

#: ``nn.Conv2d`` hyper-parameters read from the conv being replaced.
_CONV_ATTRS = ('in_channels', 'out_channels', 'kernel_size', 'stride',
               'padding', 'dilation', 'groups')


def resolve_layer_cfg(layer_cfg: dict, arg_name: str = 'adc_cfg') -> dict:
    """Check a layer config and return a copy whose ``type`` is a class.

    Args:
        layer_cfg (dict): Conv layer config, e.g. ``dict(type='ADC',
            dilation_groups=4)``, ``dict(type='DC')`` or ``dict(type='SAC')``.
        arg_name (str): Argument name used in error messages.

    Returns:
        dict: A copy of ``layer_cfg`` with ``type`` resolved to a class.

    Raises:
        TypeError: ``layer_cfg`` is not a dict with a ``type``.
        KeyError: ``type`` names no registered layer.
    """
    if not isinstance(layer_cfg, dict) or 'type' not in layer_cfg:
        raise TypeError(f'{arg_name} must be a dict with a "type" key, e.g. '
                        f"dict(type='ADC'), got {layer_cfg!r}")
    cfg = copy.deepcopy(dict(layer_cfg))
    layer_type = cfg['type']
    if inspect.isclass(layer_type):
        if not issubclass(layer_type, nn.Module):
            raise TypeError(f'{arg_name}["type"] must be an nn.Module class, '
                            f'got {layer_type!r}')
        return cfg
    if not isinstance(layer_type, str):
        raise TypeError(f'{arg_name}["type"] must be a str or a class, got '
                        f'{layer_type!r}')
    name = LAYER_ALIASES.get(layer_type, layer_type)
    # The same lookup as mmcv's build_conv_layer: the default scope's
    # registry first, then MMEngine's root registry (where ADC/DC/SAC live).
    with MODELS.switch_scope_and_registry(None) as registry:
        layer_cls = registry.get(name)
    if layer_cls is None:
        raise KeyError(
            f'{arg_name}: unknown conv layer type {layer_type!r}. Use one of '
            "'ADC', 'DC', 'SAC', 'Conv2d' or another conv layer registered "
            "in MMEngine's MODELS (did you import mmadc, e.g. with "
            "custom_imports=dict(imports=['mmadc'])?)")
    cfg['type'] = layer_cls
    return cfg


def build_replacement_conv(conv: nn.Module,
                           layer_cfg: dict,
                           arg_name: str = 'adc_cfg') -> nn.Module:
    """Build a layer from ``layer_cfg`` shaped like ``conv``.

    The new layer gets ``conv``'s channels, kernel size, stride, padding,
    dilation, groups and bias flag, and ``conv``'s ``weight`` (and ``bias``)
    are copied into it, so a block is numerically unchanged by the swap as
    long as the new layer starts as the identity of its kind (ADC rates 1,
    DC offsets 0, SAC scales 1).

    Args:
        conv (nn.Module): The conv to replace (``nn.Conv2d`` or any layer
            with its hyper-parameter attributes).
        layer_cfg (dict): Config of the new layer.
        arg_name (str): Argument name used in error messages.

    Returns:
        nn.Module: The new layer.
    """
    missing = [a for a in _CONV_ATTRS if not hasattr(conv, a)]
    if missing:
        raise TypeError(f'cannot replace {type(conv).__name__} with '
                        f'{arg_name}: it lacks the conv attributes {missing}')
    cfg = resolve_layer_cfg(layer_cfg, arg_name)
    bias = getattr(conv, 'bias', None)
    new = build_conv_layer(
        cfg,
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=isinstance(bias, torch.Tensor))
    with torch.no_grad():
        for name in ('weight', 'bias'):
            old_p, new_p = getattr(conv, name, None), getattr(new, name, None)
            if isinstance(old_p, torch.Tensor) and isinstance(
                    new_p, torch.Tensor) and old_p.shape == new_p.shape:
                new_p.copy_(old_p)
    return new


def replace_conv(module: nn.Module,
                 conv_name: str,
                 layer_cfg: dict,
                 arg_name: str = 'adc_cfg') -> nn.Module:
    """Replace ``module.<conv_name>`` by a layer built from ``layer_cfg``.

    The attribute keeps its name and its place among the module's children,
    so the state-dict keys of the block are unchanged (plus the new layer's
    own predictor keys, e.g. ``conv2.rate_regressor.fc1.weight``).

    Args:
        module (nn.Module): The block holding the conv.
        conv_name (str): Attribute name of the conv, e.g. ``'conv2'``.
        layer_cfg (dict): Config of the new layer.
        arg_name (str): Argument name used in error messages.

    Returns:
        nn.Module: The new layer (also set on ``module``).
    """
    old = getattr(module, conv_name, None)
    if not isinstance(old, nn.Module):
        raise AttributeError(f'{type(module).__name__} has no conv module '
                             f'named {conv_name!r} to replace')
    new = build_replacement_conv(old, layer_cfg, arg_name)
    setattr(module, conv_name, new)
    return new


class ADCBlockMixin:
    """Mixin that builds a residual block's 3x3 conv from ``adc_cfg``.

    Place it first among the bases: ``class ADCBottleneck(ADCBlockMixin,
    Bottleneck)``. The block is built as usual, then its ``adc_conv_name``
    attribute is replaced (:func:`replace_conv`). With ``adc_cfg=None`` the
    block is exactly the base block; :meth:`apply_adc_cfg` replaces the conv
    of such a block later, for builders that call ``block(...)`` with a
    fixed argument list (mmpose's HRNet).

    Args:
        *args: Arguments of the base block.
        adc_cfg (dict, optional): Layer config of the replacement, e.g.
            ``dict(type='ADC', dilation_groups=None)``, ``dict(type='DC')``
            or ``dict(type='SAC')``. Defaults to None (no replacement).
        **kwargs: Keyword arguments of the base block.

    Attributes:
        adc_cfg (dict | None): The config the conv was built from.
    """

    #: Attribute name of the conv that is replaced.
    adc_conv_name: str = 'conv2'

    def __init__(self, *args, adc_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.adc_cfg = None
        if adc_cfg is not None:
            self.apply_adc_cfg(adc_cfg)

    def apply_adc_cfg(self, adc_cfg: dict) -> nn.Module:
        """Replace the block's conv by a layer built from ``adc_cfg``.

        Args:
            adc_cfg (dict): Layer config of the replacement.

        Returns:
            nn.Module: The new layer.
        """
        if self.adc_cfg is not None:
            raise RuntimeError(f'{type(self).__name__}.{self.adc_conv_name} '
                               f'was already built from {self.adc_cfg}')
        layer = replace_conv(self, self.adc_conv_name, adc_cfg)
        self.adc_cfg = copy.deepcopy(adc_cfg)
        return layer


def iter_replaced_convs(model: nn.Module) -> Iterator[Tuple[str, nn.Module]]:
    """Yield ``(qualified name, layer)`` of every conv replaced by a block.

    Args:
        model (nn.Module): Any model containing :class:`ADCBlockMixin`
            blocks.

    Yields:
        tuple[str, nn.Module]: E.g. ``('layer1.0.conv2', <ADC layer>)``.
    """
    for name, module in model.named_modules():
        if isinstance(module, ADCBlockMixin) and module.adc_cfg is not None:
            conv_name = module.adc_conv_name
            prefix = f'{name}.' if name else ''
            yield prefix + conv_name, getattr(module, conv_name)


def _predictor_keys(layer: nn.Module) -> Set[str]:
    """State-dict keys of ``layer`` other than the conv's weight/bias."""
    return {k for k in layer.state_dict() if k not in ('weight', 'bias')}


class ADCBackboneMixin:
    """Mixin for backbones built from :class:`ADCBlockMixin` blocks.

    Its ``init_weights`` runs the backbone's own (``init_cfg``: e.g. Kaiming
    on every ``Conv2d``, which includes ADC/DC/SAC and DC's offset conv, or
    Normal(std=0.001) in HRNet; then a ``Pretrained`` checkpoint, loaded last
    by MMEngine) and afterwards calls ``init_weights()`` of every replaced
    layer, which restores its identity start (ADC: last regressor layer zero
    weight / bias one; DC: zero offset conv; SAC: zero weight / bias one
    scale conv) and leaves ``weight``/``bias`` untouched. Layers whose
    predictor keys were present in a checkpoint loaded during
    ``init_weights`` (fine-tuning from an ADC checkpoint) keep the loaded
    values; with an ImageNet checkpoint they are missing there and restored.
    """

    def init_weights(self) -> None:
        """Initialise the backbone, then restore the replaced layers."""
        if getattr(self, 'is_init', False):
            # MMEngine ignores a second call; so do we (the layers may be
            # trained by now).
            super().init_weights()  # type: ignore[misc]
            return
        layers = [(n, m) for n, m in iter_replaced_convs(self)
                  if hasattr(m, 'init_weights') and _predictor_keys(m)]
        loaded: Set[int] = set()

        def _record(module, state_dict, prefix, *args) -> None:
            # Called by every load_state_dict reaching this layer, including
            # MMEngine's checkpoint loader (it calls _load_from_state_dict).
            if any(prefix + k in state_dict for k in _predictor_keys(module)):
                loaded.add(id(module))

        handles = [
            register_load_state_dict_pre_hook(m, _record) for _, m in layers
        ]
        try:
            super().init_weights()  # type: ignore[misc]
        finally:
            for handle in handles:
                handle.remove()
        for _, layer in layers:
            if id(layer) not in loaded:
                layer.init_weights()


def check_adc_stages(adc_stages: Union[Tuple[bool, ...], list],
                     num_stages: int) -> Tuple[bool, ...]:
    """Validate ``adc_stages``: one bool per stage.

    Args:
        adc_stages (Sequence[bool]): Whether each stage uses the layer.
        num_stages (int): Number of stages of the backbone.

    Returns:
        tuple[bool]: ``adc_stages`` as a tuple.
    """
    if (not isinstance(adc_stages,
                       (tuple, list)) or len(adc_stages) != num_stages
            or not all(isinstance(s, bool) for s in adc_stages)):
        raise ValueError(f'adc_stages must be a sequence of {num_stages} '
                         f'bools (one per stage), got {adc_stages!r}')
    return tuple(adc_stages)


def adc_block_class(block: Type, adc_blocks: Dict[Type, Type]) -> Type:
    """The ADC version of a residual block class.

    Args:
        block (type): A block class, e.g. mmpose's or mmseg's ``Bottleneck``
            (or a subclass); an :class:`ADCBlockMixin` class is returned as
            is.
        adc_blocks (dict): Base block class to its ADC version.

    Returns:
        type: The ADC block class.
    """
    if issubclass(block, ADCBlockMixin):
        return block
    for base, adc_block in adc_blocks.items():
        if issubclass(block, base):
            return adc_block
    raise TypeError(f'no ADC version of block {block.__name__}; subclass it '
                    'with ADCBlockMixin first')


class ADCResNetMixin(ADCBackboneMixin):
    """Mixin for ResNets whose ``make_res_layer`` forwards extra keywords to
    the blocks (mmpose's and mmseg's ResNet): ``class X(ADCResNetMixin,
    ResNet)`` with :attr:`ADC_BLOCKS` mapping the library's block classes to
    their :class:`ADCBlockMixin` versions.

    Args:
        depth (int): Network depth, from {18, 34, 50, 101, 152}.
        adc_cfg (dict, optional): Layer config of the replacement conv, e.g.
            ``dict(type='ADC')`` (one rate per input channel, the paper's
            default), ``dict(type='ADC', dilation_groups=4)``,
            ``dict(type='DC')`` or ``dict(type='SAC')``. None keeps the
            plain conv. Defaults to ``dict(type='ADC')``.
        adc_stages (Sequence[bool]): Whether each stage uses it; one entry
            per stage (``num_stages``). Defaults to all four.
        **kwargs: Any other argument of the library's ``ResNet``.
    """

    #: Base block class to its ADC version (most specific first).
    ADC_BLOCKS: Dict[Type, Type] = {}

    def __init__(self,
                 depth: int,
                 adc_cfg: Optional[dict] = dict(type='ADC'),
                 adc_stages: Sequence[bool] = (True, True, True, True),
                 **kwargs) -> None:
        num_stages = kwargs.get('num_stages', 4)
        adc_stages = check_adc_stages(adc_stages, num_stages)
        if adc_cfg is not None:
            resolve_layer_cfg(adc_cfg)  # fail early, naming adc_cfg
            self.check_adc_kwargs(adc_stages, kwargs)
        # Read by make_res_layer, which ResNet.__init__ calls once per stage
        # in order (plain attributes may be set before Module.__init__).
        self._adc_pending = [
            copy.deepcopy(adc_cfg) if use else None for use in adc_stages
        ]
        super().__init__(depth, **kwargs)
        del self._adc_pending
        self.adc_cfg = copy.deepcopy(adc_cfg)
        self.adc_stages = adc_stages

    def check_adc_kwargs(self, adc_stages: Tuple[bool, ...],
                         kwargs: dict) -> None:
        """Reject library options that conflict with the swapped conv."""

    def make_res_layer(self, **kwargs):
        """Make a ResLayer whose blocks build their 3x3 conv from the
        stage's layer config."""
        stage_cfg = self._adc_pending.pop(0)
        if stage_cfg is not None:
            # The library's ResLayer forwards unknown keywords to the blocks.
            kwargs['block'] = adc_block_class(kwargs['block'], self.ADC_BLOCKS)
            kwargs['adc_cfg'] = stage_cfg
        return super().make_res_layer(**kwargs)
