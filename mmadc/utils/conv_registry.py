# Copyright (c) mmadc contributors. All rights reserved.
"""Register mmadc's conv layers in MMEngine's root MODELS registry."""
from mmengine.registry import MODELS


def register_conv_layer(name: str, cls: type) -> None:
    """Register ``cls`` as ``name`` in MMEngine's root MODELS registry.

    Every downstream scope (mmpose, mmseg, ...) falls back to the root
    registry, so ``build_conv_layer(dict(type=name), ...)`` works under any
    default scope. Re-importing the defining module (e.g.
    ``importlib.reload``) replaces its own earlier registration (same module
    and qualified name); a different class already registered under ``name``
    is a real conflict and raises ``KeyError``.
    """
    existing = MODELS.module_dict.get(name)
    if existing is cls:
        return
    ours = existing is not None and (existing.__module__ == cls.__module__ and
                                     existing.__qualname__ == cls.__qualname__)
    MODELS.register_module(name, module=cls, force=ours)
