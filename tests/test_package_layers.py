# Copyright (c) mmadc contributors. All rights reserved.
"""The package's layers: no import runs upward.

From the bottom: the torch-only operator (``mmadc.ops``); models (with the
helpers that find and name ADC layers); engine (hooks) and evaluation
(metrics); analysis tools on top. The imports are read from the source
with ``ast`` (function-level imports included), so the check needs no
import of the package and catches lazy imports too.
"""
import ast
import os
import os.path as osp
from collections import defaultdict

import pytest

PACKAGE_DIR = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'mmadc')

# layer -> subpackages of mmadc it must not import
FORBIDDEN = {
    'models':
    {'engine', 'evaluation', 'analysis', 'apis', 'entrypoints', 'deployment'},
    'engine': {'analysis', 'apis', 'entrypoints'},
    'evaluation': {'analysis', 'engine', 'apis', 'entrypoints'},
    'compat': {'models', 'engine', 'evaluation', 'analysis'},
    'utils': {'models', 'engine', 'evaluation', 'analysis'},
}


def _module_name(path: str) -> str:
    rel = osp.relpath(path, osp.dirname(PACKAGE_DIR))[:-len('.py')]
    parts = rel.split(os.sep)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def _imported_modules(path: str) -> set:
    """Absolute names of the mmadc modules a source file imports."""
    name = _module_name(path)
    is_package = path.endswith('__init__.py')
    package = name.split('.') if is_package else name.split('.')[:-1]
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = '.'.join(base +
                                  ([node.module] if node.module else []))
            else:
                module = node.module or ''
            found.add(module)
            # `from . import engine` imports the submodule mmadc.engine
            found.update(f'{module}.{a.name}' for a in node.names)
    return {m for m in found if m == 'mmadc' or m.startswith('mmadc.')}


def import_graph() -> dict:
    """Source module -> the mmadc modules it imports."""
    graph = defaultdict(set)
    for root, _, files in os.walk(PACKAGE_DIR):
        for file in files:
            if file.endswith('.py'):
                path = osp.join(root, file)
                graph[_module_name(path)] |= _imported_modules(path)
    return graph


def _layer(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def test_reader_sees_the_imports():
    """The reader is not blind: imports known to exist are found, relative
    and absolute, at module and function level."""
    graph = import_graph()
    assert 'mmadc.models.utils' in graph[
        'mmadc.engine.hooks.adc_rate_logger_hook']
    assert 'mmadc.ops.adaptive_dilated_conv' in graph['mmadc.ops']
    assert 'mmadc.ops.native_cpu' in graph['mmadc.utils.collect_env']
    assert 'mmadc.evaluation' in graph['mmadc']


def test_ops_import_only_ops():
    for module, imports in import_graph().items():
        if _layer(module) != 'ops':
            continue
        outside = {m for m in imports if _layer(m) not in ('ops', '')}
        assert not outside, f'{module} imports {sorted(outside)}'
        assert 'mmadc' not in imports, f'{module} imports mmadc'


@pytest.mark.parametrize('layer', sorted(FORBIDDEN))
def test_no_import_runs_upward(layer):
    bad = {
        module: sorted(m for m in imports if _layer(m) in FORBIDDEN[layer])
        for module, imports in import_graph().items()
        if _layer(module) == layer
    }
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f'{layer} imports from above: {bad}'
