# Copyright (c) mmadc contributors. All rights reserved.
"""Checks and helpers that mmadc's packages, entry points and tools share
and that belong to no model and to no stack-compatibility shim
(:mod:`mmadc.compat`).
"""
