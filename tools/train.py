# Copyright (c) mmadc contributors. All rights reserved.
"""Train an mmpose or mmseg config: ``python tools/train.py CONFIG [...]``.

The logic lives in :mod:`mmadc.entrypoints.train` so that ``mim train``
runs the same code (see ``python -m mmadc.compat.mim_tools``).
"""
from mmadc.entrypoints.train import main

if __name__ == '__main__':
    main()
