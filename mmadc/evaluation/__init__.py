# Copyright (c) mmadc contributors. All rights reserved.
"""Evaluation of mmadc: metrics that run inside MMEngine's test and
validation loops, and the statistics they compute (``functional``). The
ADC rate metrics are registered in MMEngine's root ``METRICS`` registry
(any codebase's config), the keypoint error metric in mmpose's."""
from .metrics import *  # noqa: F401,F403
from .metrics import __all__  # noqa: F401
