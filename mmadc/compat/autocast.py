# Copyright (c) mmadc contributors. All rights reserved.
"""Autocast to a dtype that may be the full precision, on every torch.

Recent torch accepts ``torch.autocast(device, dtype=torch.float32,
enabled=False)`` as a block that does nothing; torch 2.1 raises on entering
it on CPU (``Currently, AutocastCPU only support Bfloat16``, even disabled),
so code that runs in float32 or bfloat16 by a flag cannot pass the flag's
dtype to ``torch.autocast`` there. :func:`autocast_to` works on both.
"""
import contextlib
import functools
import warnings
from typing import ContextManager, Optional

import torch

#: dtypes that autocast computes in; any other runs without autocast.
LOW_PRECISION = (torch.float16, torch.bfloat16)


def autocast_to(device_type: str,
                dtype: Optional[torch.dtype]) -> ContextManager:
    """``torch.autocast(device_type, dtype)`` for float16/bfloat16, else
    (None, float32, float64) a block without autocast.

    Args:
        device_type (str): ``'cuda'``, ``'cpu'``, ...
        dtype (torch.dtype, optional): The compute dtype.

    Raises:
        RuntimeError: This torch cannot autocast ``device_type`` to
            ``dtype`` (e.g. float16 on CPU in torch 2.1), in one line.
    """
    if dtype not in LOW_PRECISION:
        return contextlib.nullcontext()
    reason = _unsupported(device_type, dtype)
    if reason:
        raise RuntimeError(f'torch {torch.__version__} cannot autocast '
                           f'{device_type} to {dtype}: {reason}')
    return torch.autocast(device_type, dtype=dtype)


@functools.lru_cache(maxsize=None)
def _unsupported(device_type: str, dtype: torch.dtype) -> Optional[str]:
    # Tried once rather than looked up by version: which device and dtype
    # pairs autocast supports changed release by release. torch 2.1 warns
    # and disables an unsupported pair, then raises on entering it.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            with torch.autocast(device_type, dtype=dtype):
                pass
    except RuntimeError as error:
        return str(error).strip().splitlines()[0]
    return None
