# Copyright (c) mmadc contributors. All rights reserved.
"""Visualizers of the upstream stack made to run on its pinned versions."""
