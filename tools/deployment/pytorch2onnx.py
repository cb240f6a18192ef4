# Copyright (c) mmadc contributors. All rights reserved.
"""Export a pose or segmentation model (with or without ADC) to ONNX.

Usage::

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out FILE
        [--shape H W] [--dynamic-batch] [--overwrite]

The file uses standard ONNX operators only (ADC becomes interpolation matrices
and ``MatMul``), so plain onnxruntime and TensorRT load it. Its input is the
normalised image batch ``(N, 3, H, W)`` (the config's data_preprocessor
applied), its output the heatmaps or segmentation logits. After the export the
tool runs onnxruntime on a random input and prints the largest error against
PyTorch relative to the output scale; above ``--tolerance`` (default 1e-4) it
exits with status 1. Needs ``pip install mmadc[deploy]``. ``--out`` is checked
before the model is built: it must be a ``.onnx`` file in an existing folder,
and neither it nor the ``FILE.data`` that holds the weights of a large model
may exist (unless ``--overwrite``) or be the checkpoint or the config (not even
with ``--overwrite``). Such mistakes, a checkpoint that is not one of the
config's model, and a ``--shape`` out of range end the tool with one line
``pytorch2onnx: error: ...`` and exit status 2.
"""
import argparse
import sys
from typing import List, Optional

TOLERANCE = 1e-4
#: The exit status of a refused export (1 is an export above --tolerance).
REFUSED = 2


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export an mmpose/mmseg model with ADC to ONNX')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file of the config')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input height and width (default: the config\'s codec input '
        'size or crop size)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing --out file (and its .data file); '
        'default: refuse')
    parser.add_argument(
        '--dynamic-batch',
        action='store_true',
        help='make the batch dimension dynamic')
    parser.add_argument(
        '--tolerance',
        type=float,
        default=TOLERANCE,
        help='largest accepted onnxruntime error relative to the output '
        'scale (default %(default)g)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Export and check; a refused export ends with one line on stderr and
    exit status :data:`REFUSED`."""
    from mmadc.utils.cli import run_cli
    return run_cli(export, argv, prog='pytorch2onnx', status=REFUSED)


def export(argv: Optional[List[str]] = None) -> int:
    """:func:`main` with the errors raised."""
    args = parse_args(argv)
    from mmadc.deployment import (ExportError, build_model,
                                  check_with_onnxruntime, export_onnx)
    from mmadc.deployment.onnx_export import check_shape, default_shape
    from mmadc.utils.output_path import check_output_files

    # torch's exporter writes the weights of a large model to OUT.data
    check_output_files([args.out],
                       '--out', ('.onnx', ),
                       args.overwrite,
                       inputs=((args.checkpoint, 'checkpoint'), (args.config,
                                                                 'config')),
                       sidecar_suffixes=('.data', ))
    if args.shape is not None:
        check_shape(args.shape)
    model, cfg = build_model(args.config, args.checkpoint)
    shape = args.shape or default_shape(cfg)
    if shape is None:
        raise ExportError('--shape: the config names no input size '
                          '(codec.input_size or crop_size); pass H W')
    export_onnx(model, shape, args.out, dynamic_batch=args.dynamic_batch)
    import torch
    batch = 2 if args.dynamic_batch else 1
    inputs = torch.randn(
        batch, 3, *shape, generator=torch.Generator().manual_seed(0))
    error = check_with_onnxruntime(model, args.out, inputs)
    verdict = 'ok' if error <= args.tolerance else 'TOO LARGE'
    print(f'wrote {args.out} (input {batch}x3x{shape[0]}x{shape[1]}'
          f'{", dynamic batch" if args.dynamic_batch else ""}); '
          f'onnxruntime vs PyTorch: max error {error:.2e} of the output '
          f'scale ({verdict}, tolerance {args.tolerance:g})')
    return 0 if error <= args.tolerance else 1


if __name__ == '__main__':
    sys.exit(main())
