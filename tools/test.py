# Copyright (c) mmadc contributors. All rights reserved.
"""Test a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [...]``.

The logic lives in :mod:`mmadc.entrypoints.test` so that ``mim test``
runs the same code (see ``python -m mmadc.compat.mim_tools``).
"""
from mmadc.entrypoints.test import main

if __name__ == '__main__':
    main()
