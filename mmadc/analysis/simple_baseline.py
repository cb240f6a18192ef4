# Copyright (c) mmadc contributors. All rights reserved.
"""SimpleBaseline-ResNet-50, without and with ADC, in torch and torchvision
alone.

The model of ``configs/pose/td-hm_res50(-adc)_4xb32-140e_coco-256x192.py``
for measuring ADC where OpenMMLab is not installed
(``tools/analysis/gpu_check.py``): torchvision's ResNet-50 (random weights,
the stride in the 3x3 conv as in mmpose's ``pytorch`` style) without its
pooling and classifier, and the deconvolution head of mmpose's
``HeatmapHead`` (three 4x4 stride-2 transposed convolutions of 256 channels,
each followed by BN and ReLU, then a 1x1 convolution to one heatmap per
keypoint, at a quarter of the input resolution). :func:`adc_copy` replaces
each bottleneck's 3x3 conv by :class:`~mmadc.ops.AdaptiveDilatedConv2d`, as
``ResNetADC`` with ``adc_stages=(True, True, True, True)`` and one rate per
input channel does.

Imports only torch, torchvision and :mod:`mmadc.ops`.
"""
import copy
from collections import OrderedDict
from typing import List, Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torchvision.models import resnet50
from torchvision.models.resnet import Bottleneck

from mmadc.ops import AdaptiveDilatedConv2d


class SimpleBaselineResNet50(nn.Module):
    """ResNet-50 backbone and deconvolution heatmap head.

    Args:
        num_keypoints (int): Heatmaps the head predicts. Defaults to 17
            (COCO).
        deconv_channels (Sequence[int]): Output channels of the transposed
            convolutions, each doubling the resolution. Defaults to
            ``(256, 256, 256)``.
    """

    def __init__(
        self,
        num_keypoints: int = 17,
        deconv_channels: Sequence[int] = (256, 256, 256)
    ) -> None:
        super().__init__()
        resnet = resnet50(weights=None)
        # without avgpool and fc: the head takes the stride-32 feature map
        self.backbone = nn.Sequential(
            OrderedDict((name, getattr(resnet, name))
                        for name in ('conv1', 'bn1', 'relu', 'maxpool',
                                     'layer1', 'layer2', 'layer3', 'layer4')))
        layers: List[nn.Module] = []
        channels = resnet.fc.in_features
        for out_channels in deconv_channels:
            layers += [
                nn.ConvTranspose2d(
                    channels, out_channels, 4, stride=2, padding=1,
                    bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True)
            ]
            channels = out_channels
        layers.append(nn.Conv2d(channels, num_keypoints, 1))
        self.head = nn.Sequential(*layers)
        self._init_head()

    def _init_head(self) -> None:
        # HeatmapHead.init_weights: small normal weights make the initial
        # heatmaps nearly zero, which the MSE loss starts from
        for m in self.head.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Heatmaps of shape ``(N, num_keypoints, H / 4, W / 4)`` for images
        of shape ``(N, 3, H, W)``."""
        return self.head(self.backbone(x))


def adc_copy(model: nn.Module, **adc_kwargs) -> nn.Module:
    """A copy of ``model`` whose bottleneck 3x3 convs are ADC layers.

    Each torchvision ``Bottleneck``'s ``conv2`` becomes an
    :class:`~mmadc.ops.AdaptiveDilatedConv2d` of the same geometry holding a
    copy of the conv's weight (and bias), so at the initial rates (all 1)
    the copy computes what ``model`` does; every other module is an
    unchanged copy. ``model`` itself is left as it is.

    Args:
        model (nn.Module): A model holding torchvision ``Bottleneck`` blocks,
            e.g. :class:`SimpleBaselineResNet50`.
        **adc_kwargs: Further arguments of ``AdaptiveDilatedConv2d``, e.g.
            ``dilation_groups`` (default: one rate per input channel).

    Returns:
        nn.Module: The copy.
    """
    model = copy.deepcopy(model)
    for block in model.modules():
        if isinstance(block, Bottleneck):
            block.conv2 = _adc_like(block.conv2, adc_kwargs)
    return model


def _adc_like(conv: nn.Conv2d, adc_kwargs: dict) -> AdaptiveDilatedConv2d:
    adc = AdaptiveDilatedConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
        **adc_kwargs)
    with torch.no_grad():
        adc.weight.copy_(conv.weight)
        if conv.bias is not None:
            adc.bias.copy_(conv.bias)
    adc.train(conv.training)
    return adc
