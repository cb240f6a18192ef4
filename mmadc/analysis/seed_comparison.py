# Copyright (c) mmadc contributors. All rights reserved.
"""ADC against its baseline over training seeds (``tools/run_demo.py
--seeds``): per task each model's mean and standard deviation over the
seeds, the paired difference ADC - baseline with its t interval, the
table, and one plot."""
from collections import OrderedDict
from typing import List, Sequence

import numpy as np

from mmadc.evaluation.functional import paired_t_interval, t_interval
from .report_files import new_figure

MODEL_COLOURS = {'baseline': '#1f77b4', 'adc': '#d62728'}


def compare_over_seeds(runs: Sequence[dict],
                       level: float = 0.95) -> List[dict]:
    """The statistics of the runs, per task.

    Args:
        runs (Sequence[dict]): One entry per training: ``task``, ``adc``
            (bool), ``seed``, ``metric``, ``value`` (None without a
            result) and ``config``.
        level (float): Coverage of the intervals. Defaults to 0.95.

    Returns:
        list[dict]: Per task, in the order of the runs: ``task``,
        ``metric``, ``seeds`` (ascending), per model (``baseline``,
        ``adc``; a model without runs is left out) its ``config``, its
        ``values`` (one per seed, None where that run is missing or had no
        result) and :func:`t_interval` of them (``value``: the mean,
        ``std``), and ``adc_minus_baseline``: its per-seed ``values`` and
        :func:`paired_t_interval` (the seeds where both have a result).
    """
    by_task: 'OrderedDict[str, list]' = OrderedDict()
    for run in runs:
        by_task.setdefault(run['task'], []).append(run)
    out = []
    for task, task_runs in by_task.items():
        seeds = sorted({run['seed'] for run in task_runs})
        metrics = sorted({run['metric'] for run in task_runs})
        if len(metrics) != 1:
            raise ValueError(f'the {task} runs report different metrics '
                             f'{metrics}')
        entry = OrderedDict(task=task, metric=metrics[0], seeds=seeds)
        values = {}
        for key, adc in (('baseline', False), ('adc', True)):
            model_runs = {r['seed']: r for r in task_runs if r['adc'] == adc}
            if not model_runs:
                continue
            values[key] = [
                model_runs[s]['value'] if s in model_runs else None
                for s in seeds
            ]
            configs = sorted({r['config'] for r in model_runs.values()})
            entry[key] = OrderedDict(
                config=configs[0] if len(configs) == 1 else configs,
                values=values[key],
                **t_interval(values[key], level))
        if len(values) == 2:
            diffs = [
                None if a is None or b is None else a - b
                for a, b in zip(values['adc'], values['baseline'])
            ]
            entry['adc_minus_baseline'] = OrderedDict(
                values=diffs,
                **paired_t_interval(values['adc'], values['baseline'], level))
        out.append(entry)
    return out


def _number(value, digits: int = 4) -> str:
    return 'n/a' if value is None else f'{value:.{digits}f}'


def _mean_std(stats: dict) -> str:
    if stats is None or stats['value'] is None:
        return 'n/a'
    if stats['std'] is None:
        return f'{_number(stats["value"])} (n={stats["n"]})'
    return (f'{_number(stats["value"])} +- {_number(stats["std"])} '
            f'(n={stats["n"]})')


def _difference(stats: dict) -> str:
    if stats is None or stats['value'] is None:
        return 'n/a'
    if stats['interval'] is None:
        return f'{stats["value"]:+.4f} (n={stats["n"]}, no interval)'
    low, high = stats['interval']
    verdict = 'excludes 0' if stats['excludes_zero'] else 'includes 0'
    return (f'{stats["value"]:+.4f} [{low:+.4f}, {high:+.4f}] '
            f'(n={stats["n"]}, {verdict})')


def seed_table(comparisons: Sequence[dict]) -> List[str]:
    """The summary table's lines: per task the metric, each model's mean
    +- standard deviation over the seeds and ADC - baseline with its
    interval.

    Args:
        comparisons (Sequence[dict]): :func:`compare_over_seeds`.

    Returns:
        list[str]: The lines, a header first.
    """
    level = _level(comparisons[0]) if comparisons else 0.95
    lines = [
        f'{"task":<5} {"metric":<8} {"baseline mean +- std":<28} '
        f'{"ADC mean +- std":<28} ADC - baseline '
        f'[{level:.0%} paired t-interval, df = n-1]'
    ]
    for comp in comparisons:
        lines.append(f'{comp["task"]:<5} {comp["metric"]:<8} '
                     f'{_mean_std(comp.get("baseline")):<28} '
                     f'{_mean_std(comp.get("adc")):<28} '
                     f'{_difference(comp.get("adc_minus_baseline"))}')
    return lines


def plot_seed_comparison(comparisons: Sequence[dict], path: str) -> str:
    """One PNG, a row per task: left, each model's metric per seed (the
    seeds' points joined across the models), its mean and t interval;
    right, ADC - baseline per seed with the mean and its paired t
    interval, and the zero line.

    Args:
        comparisons (Sequence[dict]): :func:`compare_over_seeds`.
        path (str): Output file.

    Returns:
        str: ``path``.
    """
    rows = max(1, len(comparisons))
    fig = new_figure(9., 3.4 * rows)
    for row, comp in enumerate(comparisons):
        seeds = comp['seeds']
        ax = fig.add_subplot(rows, 2, 2 * row + 1)
        models = [m for m in ('baseline', 'adc') if m in comp]
        offsets = np.linspace(-0.12, 0.12, len(seeds)) if len(seeds) > 1 \
            else np.zeros(1)
        for i, model in enumerate(models):
            stats = comp[model]
            _seed_points(ax, i + offsets, _values(stats), seeds,
                         MODEL_COLOURS[model])
            _mean_bar(ax, i + 0.3, stats, MODEL_COLOURS[model])
        if len(models) == 2:
            base, adc = (_values(comp[m]) for m in models)
            for j in range(len(seeds)):
                ax.plot([offsets[j], 1 + offsets[j]], [base[j], adc[j]],
                        color='0.6',
                        linewidth=0.8,
                        zorder=1)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(
            ['baseline' if m == 'baseline' else 'ADC' for m in models])
        ax.set_xlim(-0.5, len(models) - 0.3)
        ax.set_ylabel(comp['metric'])
        ax.set_title(
            f'{comp["task"]}: {comp["metric"]} per seed, mean and '
            f'{_level(comp):.0%} t-interval',
            fontsize=9)
        ax.grid(alpha=0.3)
        ax = fig.add_subplot(rows, 2, 2 * row + 2)
        diff = comp.get('adc_minus_baseline')
        if diff is not None:
            _seed_points(ax, offsets, _values(diff), seeds, 'k')
            _mean_bar(ax, 0.3, diff, 'k')
        ax.axhline(0., color='0.4', linewidth=0.8, linestyle='--')
        ax.set_xticks([0])
        ax.set_xticklabels(['ADC - baseline'])
        ax.set_xlim(-0.5, 0.7)
        ax.set_title(
            'paired difference per seed:\n'  # two lines fit the panel
            f'{_difference(diff) if diff else "no pairs"}',
            fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _level(comp: dict) -> float:
    for key in ('adc_minus_baseline', 'adc', 'baseline'):
        if key in comp:
            return comp[key]['level']
    return 0.95


def _values(stats: dict) -> np.ndarray:
    """The per-seed values, NaN where a run gave none."""
    return np.array([np.nan if v is None else v for v in stats['values']])


def _seed_points(ax, xs: np.ndarray, ys: np.ndarray, seeds: Sequence[int],
                 colour: str) -> None:
    """One point per seed, labelled with its seed."""
    ax.scatter(xs, ys, s=18, color=colour, zorder=3)
    for x, y, seed in zip(xs, ys, seeds):
        if np.isfinite(y):
            ax.annotate(
                str(seed), (x, y),
                textcoords='offset points',
                xytext=(4, 2),
                fontsize=7)


def _mean_bar(ax, x: float, stats: dict, colour: str) -> None:
    """The mean as a diamond with its interval as an error bar."""
    if stats['value'] is None:
        return
    yerr = None
    if stats['interval'] is not None:
        low, high = stats['interval']
        yerr = [[stats['value'] - low], [high - stats['value']]]
    ax.errorbar([x], [stats['value']],
                yerr=yerr,
                fmt='D',
                color=colour,
                markersize=5,
                capsize=4,
                zorder=4)
