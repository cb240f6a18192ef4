# Copyright (c) mmadc contributors. All rights reserved.
"""Compatibility shims between mmadc and the versions of its stack.

Each module works around one gap of torch / MMEngine / mmcv / mmseg as
installed (checkpoint loading under ``weights_only``, compiled mmcv ops,
CPU-only ``torchrun``, ``mim`` scripts a codebase does not ship); nothing
here is part of the ADC method.
"""
