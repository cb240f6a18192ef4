# Copyright (c) mmadc contributors. All rights reserved.
"""Compatibility shims between mmadc and the versions of its stack.

Each module works around one gap of torch / MMEngine / mmcv / mmseg as
installed (checkpoint loading under ``weights_only``, compiled mmcv ops,
CPU-only ``torchrun``, ``mim`` scripts a codebase does not ship), or one
API the lowest supported torch (2.1) lacks: ``register_load_state_dict_
pre_hook`` (:mod:`.module_hooks`), ``add_safe_globals``
(:func:`.checkpoint_globals.load_weights_only`) and float32 or CPU float16
autocast (:mod:`.autocast`). Nothing here is part of the ADC method.
"""
