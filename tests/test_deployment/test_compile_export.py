# Copyright (c) mmadc contributors. All rights reserved.
"""Whole ADC models under torch.compile and torch.export (CPU).

The oracle is the same model in eager mode: a compiled training step must
reproduce eager's losses and updated parameters, an exported program
eager's outputs, for batch sizes other than the traced one.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmadc.deployment import TensorForward
from mmadc.ops import AdaptiveDilatedConv2d

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

pytestmark = pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason='compiling and exporting ADC needs torch >= 2.4')


def _build(config: str, scope: str):
    """The config's model, no pretrained weights, rates away from 1."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    init_default_scope(scope)
    if scope == 'mmpose':
        from mmpose.registry import MODELS
    else:
        from mmseg.registry import MODELS
    cfg.model.pop('init_cfg', None)
    cfg.model.backbone.pop('init_cfg', None)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    layers = [
        m for m in model.modules() if isinstance(m, AdaptiveDilatedConv2d)
    ]
    assert layers
    with torch.no_grad():
        for layer in layers:
            layer.rate_regressor.fc2.weight.normal_(0, 0.05)
            layer.rate_regressor.fc2.bias.uniform_(0.5, 2.5)
    return model, layers


def _gradients(net):
    return torch.cat([p.grad.flatten() for p in net.parameters()])


@pytest.mark.parametrize('backend', ['aot_eager', 'inductor'])
def test_compiled_pose_training_step_matches_eager(backend):
    """SimpleBaseline-ResNet-18-ADC training steps (forward, heatmap loss,
    backward, SGD) compiled, the network and its loss in one graph
    (fullgraph=True), equal eager over three steps; the rate hook's
    ``last_rates`` is set by the compiled forward.

    ``aot_eager`` runs the captured graphs (Dynamo, then AOTAutograd through
    the op's fake kernel and registered autograd) with eager kernels, so its
    gradients must equal eager's to round-off. Inductor generates its own
    float32 kernels (BatchNorm, the optimizer); its gradients are compared
    with the float64 eager model's, to 1% (measured the same way: 0.4%, and
    0.1% on the plain ResNet-18, whose eager float32 gradients are within
    0.001%).
    """
    model, layers = _build(
        'configs/demo/td-hm_res18-adc_1xb32-40e_synthetic-coco-128x96.py',
        'mmpose')
    model.train()
    eager = copy.deepcopy(model)
    oracle = copy.deepcopy(model).double()
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randn(2, 3, 128, 96, generator=gen)
    targets = torch.rand(2, 17, 32, 24, generator=gen)
    weights = torch.rand(2, 17, generator=gen)

    def make_step(net, compile):
        """forward + loss compiled with fullgraph=True (zero graph breaks;
        backward runs its AOTAutograd-compiled backward) and the SGD step
        compiled as PyTorch's docs do it (its wrapper breaks the graph on
        purpose, around the update); or both eager."""
        optimizer = torch.optim.SGD(net.parameters(), lr=1e-2)

        def forward_loss(x, heatmaps, target_weights):
            pred = net.head.forward(net.backbone(x))
            return net.head.loss_module(pred, heatmaps, target_weights)

        update = optimizer.step
        if compile:
            forward_loss = torch.compile(
                forward_loss, fullgraph=True, backend=backend)
            update = torch.compile(update, backend=backend)

        def step(*args):
            optimizer.zero_grad(set_to_none=True)
            loss = forward_loss(*args)
            loss.backward()
            update()
            return loss.detach()

        return step

    compiled = make_step(model, compile=True)
    reference = make_step(eager, compile=False)
    exact = make_step(oracle, compile=False)
    for index in range(3):
        for layer in layers:
            layer.last_rates = None
        loss = compiled(inputs, targets, weights)
        expected = reference(inputs, targets, weights)
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-7)
        assert all(layer.last_rates is not None for layer in layers)
        got = _gradients(model)
        if backend == 'aot_eager':
            ref = _gradients(eager)
            assert (got - ref).norm() <= 1e-5 * ref.norm()
        elif index == 0:  # later, the float32 and float64 parameters differ
            exact(inputs.double(), targets.double(), weights.double())
            truth = _gradients(oracle).float()
            assert (got - truth).norm() <= 1e-2 * truth.norm()


@pytest.mark.parametrize('config,scope,size', [
    ('configs/pose/td-hm_res50-adc_4xb32-140e_coco-256x192.py', 'mmpose',
     (64, 48)),
    ('configs/seg/fcn_r50-d8-adc_4xb2-40k_cityscapes-769x769.py', 'mmseg',
     (65, 65)),
])
def test_export_with_dynamic_batch_equals_eager(config, scope, size):
    """SimpleBaseline-ResNet-50-ADC and FCN-R50-d8-ADC (eval mode) export
    with a dynamic batch dimension; the program equals eager at other batch
    sizes and calls the registered op."""
    model, layers = _build(config, scope)
    module = TensorForward(model).eval()
    batch = torch.export.Dim('batch', min=1, max=32)
    program = torch.export.export(
        module, (torch.randn(2, 3, *size), ), dynamic_shapes=({
            0: batch
        }, ))
    calls = [
        node for node in program.graph.nodes
        if str(node.target) == 'mmadc.adaptive_dilated_conv2d.default'
    ]
    assert len(calls) == len(layers)
    exported = program.module()
    for num in (1, 3):
        x = torch.randn(num, 3, *size)
        with torch.no_grad():
            torch.testing.assert_close(
                exported(x), module(x), rtol=1e-4, atol=1e-4)
