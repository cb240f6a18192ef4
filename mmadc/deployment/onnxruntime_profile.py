# Copyright (c) mmadc contributors. All rights reserved.
"""Where an ONNX model spends its time in onnxruntime: the kernel time of
its nodes per operator type, from onnxruntime's own profiler.

The profile is of the graph onnxruntime runs, after its optimisations: a
``Conv`` there may carry a fused ``BatchNormalization`` and activation, a
``FusedGemm`` is a ``Gemm`` with its activation, ``ReorderInput`` and
``ReorderOutput`` move tensors into and out of the blocked layout of its
convolutions. What a run takes beyond its kernels (scheduling, waking
threads, allocation) is the difference between the run's wall time and the
sum of its kernels. The profiler adds time to every node it records, so a
profiled run takes longer than a timed one, the more so the more nodes the
graph has: read the figures as shares of a run, and compare two models'
speeds with their timed runs.
"""
import json
import os.path as osp
import statistics
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np

from .onnx_export import onnxruntime_session

#: onnxruntime's profile names a node's kernel event ``<node>_kernel_time``
_KERNEL_SUFFIX = '_kernel_time'


def op_type_times(events: List[dict], runs: int) -> dict:
    """Kernel time per operator type, per run, of the last ``runs`` runs of
    an onnxruntime profile (earlier runs are warm-up).

    Args:
        events (list[dict]): The profile (onnxruntime's JSON trace events).
        runs (int): How many of the last runs to count.

    Returns:
        dict: ``runs``; ``run_ms``, the median wall time of those runs;
        ``kernel_ms``, their kernels' time per run; ``ops``, per operator
        type (most time first) its ``ms`` per run and ``nodes`` (how many
        nodes of that type ran).

    Raises:
        ValueError: The profile holds fewer than ``runs`` runs.
    """
    windows = sorted((e['ts'], e['ts'] + e['dur']) for e in events
                     if e.get('cat') == 'Session' and e['name'] == 'model_run')
    if runs < 1 or len(windows) < runs:
        raise ValueError(f'runs: expected 1 to {len(windows)} (the runs in '
                         f'the profile), got {runs}')
    windows = windows[-runs:]
    start = windows[0][0]
    totals: Dict[str, float] = {}
    nodes: Dict[str, set] = {}
    for e in events:
        if (e.get('cat') != 'Node' or not e['name'].endswith(_KERNEL_SUFFIX)
                or e['ts'] < start):
            continue
        op = e['args']['op_name']
        totals[op] = totals.get(op, 0.0) + e['dur']
        nodes.setdefault(op, set()).add(e['name'][:-len(_KERNEL_SUFFIX)])
    # onnxruntime's event times are microseconds
    ops = {
        op: dict(ms=total / runs / 1e3, nodes=len(nodes[op]))
        for op, total in sorted(totals.items(), key=lambda kv: -kv[1])
    }
    return dict(
        runs=runs,
        run_ms=statistics.median(end - begin for begin, end in windows) / 1e3,
        kernel_ms=sum(totals.values()) / runs / 1e3,
        ops=ops)


def profile_op_types(onnx_file: str,
                     inputs: Sequence[np.ndarray],
                     runs: int,
                     warmup: int = 1,
                     threads: Optional[int] = None,
                     spinning: bool = True) -> dict:
    """Run ``onnx_file`` on ``inputs`` (its inputs in order) ``warmup +
    runs`` times with onnxruntime's profiler on and return
    :func:`op_type_times` of the last ``runs``.

    The session is a new one, so that a session that times the model is
    not slowed by the profiler; its profile file is written to a temporary
    folder and removed. ``threads`` and ``spinning``: see
    :func:`~mmadc.deployment.onnx_export.onnxruntime_session`.
    """
    with tempfile.TemporaryDirectory() as tmp:
        session = onnxruntime_session(
            onnx_file,
            threads,
            spinning,
            profile_prefix=osp.join(tmp, 'profile'))
        feed = {
            arg.name: value
            for arg, value in zip(session.get_inputs(), inputs)
        }
        for _ in range(warmup + runs):
            session.run(None, feed)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    return op_type_times(events, runs)
