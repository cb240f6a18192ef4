# Copyright (c) mmadc contributors. All rights reserved.
"""Export an mmpose or mmseg model (with or without ADC) to ONNX.

The model is traced with ``torch.export`` (ADC stays one
``mmadc::adaptive_dilated_conv2d`` call), each ADC call is replaced by its
decomposition into standard operators (:mod:`mmadc.ops.decomposition`:
interpolation matrices and ``MatMul``), and the program goes through PyTorch's
ONNX exporter. The file has the default ONNX domain only, so plain onnxruntime
and TensorRT load it.

Like mmdeploy's exports, the ONNX model is the network's tensor forward
(``model(inputs, mode='tensor')``): inputs are already normalised by the
config's ``data_preprocessor`` (mean/std, BGR to RGB), outputs are the raw
heatmaps (pose) or segmentation logits (seg), decoded outside.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from mmadc.ops.decomposition import DECOMPOSITIONS
from mmadc.utils.checkpoint_file import (check_checkpoint_file,
                                         load_fitting_checkpoint)
from mmadc.utils.cli import CliError, check_input_file

#: The largest input side accepted: above it the example input and the
#: activations of a traced network take tens of GB (an export at 100000 x
#: 100000 dies in the allocator); the largest inputs of mmseg's configs
#: are 2048 wide.
MAX_SIDE = 8192


class ExportError(CliError):
    """An export that cannot proceed; the message is one line for users."""


def check_export_support() -> None:
    """Raise :class:`ExportError` on a torch that cannot export ADC: the
    export traces ADC as the registered op (``torch.library.custom_op``)
    with ``torch.export``'s dynamic shapes, both torch >= 2.4."""
    if not hasattr(torch.library, 'custom_op'):
        raise ExportError(f'exporting ADC to ONNX needs torch >= 2.4 '
                          f'(torch.library.custom_op, torch.export); this '
                          f'is torch {torch.__version__}')


def check_shape(shape: Sequence[int]) -> None:
    """Raise :class:`ExportError` unless ``shape`` is two sizes in
    ``[1, MAX_SIDE]``, before anything is allocated."""
    height, width = shape
    if height < 1 or width < 1:
        raise ExportError(f'--shape: expected two positive sizes H W, got '
                          f'{height} {width}')
    if height > MAX_SIDE or width > MAX_SIDE:
        raise ExportError(f'--shape: expected sizes H W of at most '
                          f'{MAX_SIDE}, got {height} {width}')


class TensorForward(nn.Module):
    """``model(inputs, mode='tensor')`` as a plain module of one tensor.

    What export and deployment trace: the network without data samples,
    pre- or post-processing. A model with several outputs (e.g. mmseg's
    auxiliary heads in train mode) gives its first.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.model(inputs, None, mode='tensor')
        return out[0] if isinstance(out, (list, tuple)) else out


def _scope_models(cfg):
    """The MODELS registry of the config's default scope."""
    scope = cfg.get('default_scope')
    if scope == 'mmpose':
        from mmpose.registry import MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        raise ExportError(f'config: default_scope {scope!r} is neither '
                          "'mmpose' nor 'mmseg'")
    from mmengine.registry import init_default_scope
    init_default_scope(scope)
    return MODELS


def build_model(config: str,
                checkpoint: Optional[str]) -> Tuple[nn.Module, object]:
    """The config's model in eval mode with the checkpoint's weights.

    Args:
        config (str): An mmpose or mmseg config file.
        checkpoint (str, optional): A checkpoint of that config (None: the
            model's fresh initialisation, no pretrained weights loaded).

    Returns:
        tuple: The model (eval mode, CPU) and the config.

    Raises:
        ExportError: Unknown config, missing checkpoint, or a checkpoint
            whose weights do not fit the config's model.
    """
    from mmengine.config import Config
    try:
        check_input_file(config, 'config', 'a config file')
        if checkpoint is not None:
            check_checkpoint_file(checkpoint)
    except CliError as err:
        raise ExportError(str(err)) from None
    import mmadc  # noqa: F401  registers ADC and its backbones
    cfg = Config.fromfile(config)
    models = _scope_models(cfg)
    model_cfg = cfg.model.copy()
    model = models.build(model_cfg)
    if checkpoint is not None:
        try:
            load_fitting_checkpoint(model, checkpoint, config)
        except CliError as err:
            raise ExportError(str(err)) from None
    return model.eval(), cfg


def default_shape(cfg) -> Optional[Tuple[int, int]]:
    """The config's input size ``(H, W)``: the pose codec's input size or
    the segmentation crop size; None if it names neither."""
    codec = cfg.get('codec')
    if isinstance(codec, dict) and 'input_size' in codec:
        width, height = codec['input_size']
        return int(height), int(width)
    crop = cfg.get('crop_size')
    if crop is not None:
        return int(crop[0]), int(crop[1])
    return None


def export_module(module: nn.Module,
                  example_inputs: Sequence[torch.Tensor],
                  out_file: str,
                  input_names: Sequence[str],
                  dynamic_batch: bool = False) -> None:
    """Export ``module(*example_inputs)`` with standard ONNX operators.

    The module is traced with ``torch.export``, each ADC call replaced by
    its decomposition (:mod:`mmadc.ops.decomposition`), and the program
    written by PyTorch's ONNX exporter.

    Args:
        module (nn.Module): A module in eval mode.
        example_inputs (Sequence[Tensor]): Its inputs for the trace; with
            ``dynamic_batch`` their batch size must not be 1 (torch.export
            specialises a size of 1).
        out_file (str): The ONNX file to write.
        input_names (Sequence[str]): The ONNX names of the inputs.
        dynamic_batch (bool): Keep dimension 0 of every input symbolic (one
            batch size for all); else the example's sizes are fixed.

    Raises:
        ExportError: A torch older than 2.4.
    """
    check_export_support()
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim('batch', min=1, max=1024)
        dynamic_shapes = tuple({0: batch} for _ in example_inputs)
    with torch.no_grad():
        program = torch.export.export(
            module, tuple(example_inputs), dynamic_shapes=dynamic_shapes)
    program = program.run_decompositions(DECOMPOSITIONS)
    torch.onnx.export(
        program,
        tuple(example_inputs),
        out_file,
        input_names=list(input_names),
        output_names=['output'],
        dynamo=True,
        verbose=False)


def export_onnx(model: nn.Module,
                shape: Sequence[int],
                out_file: str,
                dynamic_batch: bool = False) -> torch.Tensor:
    """Export ``model``'s tensor forward at input ``(N, 3, H, W)``.

    Args:
        model (nn.Module): An mmpose/mmseg model in eval mode.
        shape (Sequence[int]): Input height and width.
        out_file (str): The ONNX file to write.
        dynamic_batch (bool): Keep the batch dimension symbolic (traced at
            batch size 2: torch.export specialises a size of 1); else the
            batch size is 1.

    Returns:
        Tensor: The input the model was traced with.

    Raises:
        ExportError: A torch older than 2.4, a size outside
            ``[1, MAX_SIDE]``, or the model cannot take that shape.
    """
    check_export_support()
    check_shape(shape)
    height, width = shape
    module = TensorForward(model).eval()
    example = torch.randn(2 if dynamic_batch else 1, 3, height, width)
    try:
        with torch.no_grad():
            module(example)
    except Exception as err:  # the model's own message, on one line
        first = str(err).strip().splitlines()[0] if str(err) else ''
        raise ExportError(f'--shape: the model cannot take an input of '
                          f'{height}x{width}: {type(err).__name__}: '
                          f'{first}') from err
    export_module(module, (example, ), out_file, ['input'], dynamic_batch)
    return example


def onnxruntime_session(onnx_file: str,
                        threads: Optional[int] = None,
                        spinning: bool = True,
                        profile_prefix: Optional[str] = None):
    """An onnxruntime CPU session of ``onnx_file``.

    Args:
        onnx_file (str): The model.
        threads (int, optional): Intra-op threads (None: onnxruntime's
            default).
        spinning (bool): Whether idle threads busy-wait for the next
            operator (onnxruntime's default). A benchmark that runs
            onnxruntime in turns with eager PyTorch turns it off: spinning
            onnxruntime threads took the cores from torch's threads between
            runs (eager times grew up to tenfold on 2 cores).
        profile_prefix (str, optional): Turn onnxruntime's profiler on; it
            writes its JSON to a file whose name starts with this path
            (``session.end_profiling()`` returns the file's name; see
            :mod:`mmadc.deployment.onnxruntime_profile`).
    """
    import onnxruntime
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '0')
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return onnxruntime.InferenceSession(
        onnx_file, options, providers=['CPUExecutionProvider'])


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest difference between ``got`` and ``expected``, relative to the
    largest absolute value of ``expected`` (the export check's measure)."""
    scale = float(expected.abs().max()) or 1.0
    return float((got - expected).abs().max()) / scale


def check_with_onnxruntime(model: nn.Module, onnx_file: str,
                           inputs: torch.Tensor) -> float:
    """Largest difference between onnxruntime and PyTorch on ``inputs``,
    relative to the largest absolute output of PyTorch."""
    session = onnxruntime_session(onnx_file)
    name = session.get_inputs()[0].name
    got = session.run(None, {name: inputs.numpy()})[0]
    with torch.no_grad():
        expected = TensorForward(model).eval()(inputs)
    return relative_error(torch.from_numpy(got), expected)
