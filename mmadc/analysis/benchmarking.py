# Copyright (c) mmadc contributors. All rights reserved.
"""Timing and peak-memory measurement shared by the benchmark tools
(``tools/analysis/benchmark_adc.py`` and ``benchmark_model.py``)."""
import argparse
import contextlib
import ctypes
import gc
import json
import statistics
import sys
import time
from typing import Callable, Dict, Iterator, List, Optional

import torch


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both benchmark tools take: --batch, --device, --impl,
    --gemm, --threads, --seed and --json."""
    from mmadc.ops.implementations import IMPLEMENTATIONS
    from mmadc.ops.native_cpu import GEMM_LIBRARIES
    parser.add_argument('--batch', type=int, default=8, help='batch size')
    parser.add_argument(
        '--device', default='cpu', choices=['cpu', 'cuda'], help='device')
    parser.add_argument(
        '--impl',
        default='auto',
        choices=IMPLEMENTATIONS,
        help='ADC implementation: the native CPU kernel where it applies '
        '(auto), only it (native) or the PyTorch reference (reference)')
    parser.add_argument(
        '--gemm',
        default='auto',
        choices=GEMM_LIBRARIES,
        help="the native kernel's float32 GEMMs: oneDNN's matmul where the "
        "CPU has AVX-512 and is not Intel's, else at::mm (auto), or the "
        'one named')
    parser.add_argument(
        '--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--json',
        action='store_true',
        help='print exactly one JSON object on stdout instead of a table')


@contextlib.contextmanager
def selected_kernels(args: argparse.Namespace) -> Iterator[None]:
    """The ADC implementation (``--impl``) and the native kernel's GEMM
    library (``--gemm``) of :func:`add_common_arguments` for a ``with``
    block; a ``--gemm`` this machine cannot run exits with one line."""
    from mmadc.ops import adc_implementation
    from mmadc.ops.native_cpu import gemm_library
    with contextlib.ExitStack() as stack:
        stack.enter_context(adc_implementation(args.impl))
        try:
            stack.enter_context(gemm_library(args.gemm))
        except RuntimeError as exc:
            raise SystemExit(f'--gemm {args.gemm}: {exc}') from None
        yield


def time_rounds_ms(fns: Dict[str, Callable[[], object]], device: torch.device,
                   repeat: int, warmup: int) -> Dict[str, List[float]]:
    """Wall times of each function in milliseconds, timed in turns.

    Round ``i`` times every function once, back to back, and gives element
    ``i`` of each list, so a slow phase of a shared machine (other
    processes, frequency changes) affects one round's functions alike:
    compare them round by round (:func:`median_ratio`).
    """
    sync = (
        torch.cuda.synchronize if device.type == 'cuda' else (lambda: None))
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def time_interleaved_ms(fns: Dict[str, Callable[[],
                                                object]], device: torch.device,
                        repeat: int, warmup: int) -> Dict[str, float]:
    """Median wall time of each function in milliseconds, timed in turns
    (see :func:`time_rounds_ms`)."""
    rounds = time_rounds_ms(fns, device, repeat, warmup)
    return {name: statistics.median(t) for name, t in rounds.items()}


def median_ratio(numerator: List[float], denominator: List[float]) -> float:
    """Median over rounds of ``numerator[i] / denominator[i]``: the ratio of
    two functions timed in the same rounds, robust to slow phases that span
    rounds (which skew a ratio of medians)."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError('median_ratio expects two equally long, non-empty '
                         f'lists of rounds, got {len(numerator)} and '
                         f'{len(denominator)}')
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def peak_memory_mb(fn: Callable[[], object],
                   device: torch.device) -> Optional[float]:
    """Peak memory that one call of ``fn`` adds to what is in use before it.

    CUDA: ``torch.cuda.max_memory_allocated`` above the allocated memory
    before the call. CPU (Linux): the peak resident set size during the call
    (``VmHWM``, reset through ``/proc/self/clear_refs``) above the resident
    size before it, after returning freed heap pages to the system; this
    counts every temporary, including library scratch memory that PyTorch's
    allocator never sees (oneDNN, MKL). None where it cannot be measured.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    if not sys.platform.startswith('linux'):
        return None
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # reset VmHWM to the current RSS
    except OSError:
        return None
    base = _proc_status_bytes('VmRSS')
    fn()
    return (_proc_status_bytes('VmHWM') - base) / 2**20


def _proc_status_bytes(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024  # reported in kB
    raise OSError(f'{key} not in /proc/self/status')


def emit_report(report: dict, as_json: bool,
                print_table: Callable[[dict], None]) -> None:
    """Print a benchmark report: one JSON object on stdout (for machines)
    or the tool's table."""
    if as_json:
        json.dump(report, sys.stdout)
        sys.stdout.write('\n')
    else:
        print_table(report)
