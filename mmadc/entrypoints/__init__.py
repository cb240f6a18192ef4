# Copyright (c) mmadc contributors. All rights reserved.
"""Generic train/test entry points for any mmpose or mmseg config.

``tools/train.py``/``tools/test.py`` of this repository and the scripts that
``python -m mmadc.compat.mim_tools install`` places for ``mim train``/``mim
test`` all call these, so every route runs the same code.
"""
