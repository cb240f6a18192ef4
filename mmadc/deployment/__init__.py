# Copyright (c) mmadc contributors. All rights reserved.
"""Deploying mmadc models: ONNX export with standard operators only.

Needs the ``deploy`` extra (``pip install mmadc[deploy]``: onnx, onnxscript,
onnxruntime); ``import mmadc`` does not import this package.
"""
from .onnx_export import (ExportError, TensorForward, build_model,
                          check_with_onnxruntime, export_module, export_onnx,
                          onnxruntime_session, relative_error)
from .onnxruntime_profile import op_type_times, profile_op_types

__all__ = [
    'ExportError', 'TensorForward', 'build_model', 'check_with_onnxruntime',
    'export_module', 'export_onnx', 'onnxruntime_session', 'op_type_times',
    'profile_op_types', 'relative_error'
]
