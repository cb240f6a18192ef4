# Copyright (c) mmadc contributors. All rights reserved.
"""Reports of the dilation-rate statistics by person size (Fig. 6): the
JSON and CSV files and the plots of
:meth:`~mmadc.evaluation.functional.SizeGroupedRateStats.summary`."""
import csv
import math
import os
import os.path as osp
from collections import OrderedDict
from typing import List, Tuple

import numpy as np

from mmadc.evaluation.functional import SIZE_GROUPS
from .report_files import new_figure

#: Line colours of the size groups in the plots.
GROUP_COLOURS = {'small': '#1f77b4', 'medium': '#ff7f0e', 'large': '#2ca02c'}


def write_rate_csv(summary: dict, path: str) -> None:
    """Write a summary as a long CSV table.

    One row per layer, dilation group and size group with columns
    ``layer, stage, block, dilation_group, first_channel, last_channel,
    size_group, count, mean, var``.

    Args:
        summary (dict): :meth:`SizeGroupedRateStats.summary`.
        path (str): Output file.
    """
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow([
            'layer', 'stage', 'block', 'dilation_group', 'first_channel',
            'last_channel', 'size_group', 'count', 'mean', 'var'
        ])
        for name, entry in summary['layers'].items():
            per = entry['channels_per_group']
            for group, st in entry['groups'].items():
                for j, (mean, var) in enumerate(zip(st['mean'], st['var'])):
                    writer.writerow([
                        name, entry['stage'], entry['block'], j, j * per,
                        (j + 1) * per - 1, group, st['count'],
                        '' if mean is None else repr(mean),
                        '' if var is None else repr(var)
                    ])


def plot_rate_statistics(summary: dict, out_dir: str) -> List[str]:
    """Fig. 6 style plots: one PNG per stage, one subplot per block.

    Each subplot shows the mean rate of every channel (dilation group) of
    one ADC layer, one line per size group (legend with instance counts
    and the standard deviation of the mean rates across channels),
    titled ``ADC_stage_block`` as in the paper.

    Args:
        summary (dict): :meth:`SizeGroupedRateStats.summary`.
        out_dir (str): Directory for ``rates_<stage>.png``.

    Returns:
        list[str]: The written files.
    """
    os.makedirs(out_dir, exist_ok=True)
    by_stage: 'OrderedDict[str, List[Tuple[str, dict]]]' = OrderedDict()
    for name, entry in summary['layers'].items():
        by_stage.setdefault(entry['stage'], []).append((name, entry))
    counts = summary.get('num_instances', {})
    files = []
    for stage, entries in by_stage.items():
        cols = min(4, len(entries))
        rows = math.ceil(len(entries) / cols)
        fig = new_figure(4.2 * cols, 3.2 * rows)
        for k, (name, entry) in enumerate(entries):
            ax = fig.add_subplot(rows, cols, k + 1)
            for group in SIZE_GROUPS:
                mean = entry['groups'][group]['mean']
                if entry['groups'][group]['count'] == 0:
                    continue
                ax.plot(
                    np.arange(len(mean)),
                    np.array(mean, dtype=float),
                    color=GROUP_COLOURS[group],
                    linewidth=0.9,
                    label=f'{group} (n={counts.get(group, "?")}, channel '
                    f'sd {entry["channel_spread"][group]["std"]:.3f})')
            ax.set_title(entry['title'], fontsize=10)
            per_channel = entry['channels_per_group'] == 1
            ax.set_xlabel('channel' if per_channel else
                          f'dilation group ({entry["channels_per_group"]} '
                          'channels each)')
            ax.set_ylabel('mean dilation rate')
            ax.grid(alpha=0.3)
            if k == 0:
                ax.legend(fontsize=8)
        fig.suptitle(f'Mean ADC dilation rates by person size: {stage}')
        fig.tight_layout()
        path = osp.join(out_dir, f'rates_{stage}.png')
        fig.savefig(path, dpi=100)
        files.append(path)
    return files


def _interval_text(result: dict) -> str:
    if result['value'] is None:
        return 'undefined (constant rates or an empty group)'
    if result['interval'] is None:
        return f'{result["value"]:.3f}'
    low, high = result['interval']
    verdict = 'excludes 0' if result['excludes_zero'] else 'includes 0'
    return f'{result["value"]:.3f} [{low:.3f}, {high:.3f}] ({verdict})'


def trend_lines(summary: dict) -> List[str]:
    """One stdout line per stage: the size trend and whether each 95%
    interval excludes 0 (``[]`` without a trend in the summary)."""
    lines = []
    for stage, trend in summary.get('stage_trends', {}).items():
        lines.append(
            f'{stage}: Spearman(box area, mean rate) '
            f'{_interval_text(trend["spearman"])}; large - small mean rate '
            f'{_interval_text(trend["large_minus_small"])}')
    return lines


def write_trend_csv(summary: dict, path: str) -> None:
    """Write the size trends (``size_trend`` of each layer,
    ``stage_trends``) as a CSV table.

    One row per layer or stage and statistic with columns ``scope, name,
    stage, statistic, value, low, high, excludes_zero, n`` (``n``: persons,
    or ``large;small`` for the difference).

    Args:
        summary (dict): :meth:`SizeGroupedRateStats.summary`.
        path (str): Output file.
    """
    rows = [('layer', name, entry['stage'], entry['size_trend'])
            for name, entry in summary['layers'].items()
            if 'size_trend' in entry]
    rows += [('stage', stage, stage, trend)
             for stage, trend in summary.get('stage_trends', {}).items()]
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow([
            'scope', 'name', 'stage', 'statistic', 'value', 'low', 'high',
            'excludes_zero', 'n'
        ])
        for scope, name, stage, trend in rows:
            for key in ('spearman', 'large_minus_small'):
                res = trend[key]
                low, high = res['interval'] or ('', '')
                n = res['n']
                writer.writerow([
                    scope, name, stage, key,
                    '' if res['value'] is None else repr(res['value']),
                    repr(low) if low != '' else '',
                    repr(high) if high != '' else '', ''
                    if res['excludes_zero'] is None else res['excludes_zero'],
                    ';'.join(map(str, n)) if isinstance(n, list) else n
                ])


def plot_size_trends(summary: dict, out_dir: str) -> List[str]:
    """One PNG per stage: each person's mean rate against log10 box area,
    coloured by size group, with the least-squares line of rate on log
    area and the Spearman correlation in the title.

    Args:
        summary (dict): :meth:`SizeGroupedRateStats.summary` with
            ``persons``.
        out_dir (str): Directory for ``trend_<stage>.png``.

    Returns:
        list[str]: The written files (none without ``persons``).
    """
    persons = summary.get('persons')
    if not persons:
        return []
    os.makedirs(out_dir, exist_ok=True)
    # log of 0 is undefined: a zero-area box sits at the smallest positive
    area = np.asarray(persons['area'], np.float64)
    log_area = np.log10(np.maximum(area, 1.))
    groups = np.asarray(persons['group'])
    files = []
    for stage, rates in persons['stage_rate'].items():
        rates = np.asarray(rates, np.float64)
        fig = new_figure(5.5, 4.)
        ax = fig.add_subplot(1, 1, 1)
        for group in SIZE_GROUPS:
            mask = groups == group
            if mask.any():
                ax.scatter(
                    log_area[mask],
                    rates[mask],
                    s=8,
                    color=GROUP_COLOURS[group],
                    label=f'{group} (n={int(mask.sum())})')
        if np.ptp(log_area) > 0:
            slope, intercept = np.polyfit(log_area, rates, 1)
            xs = np.array([log_area.min(), log_area.max()])
            ax.plot(
                xs,
                slope * xs + intercept,
                color='k',
                linewidth=1,
                label=f'least squares (slope {slope:.3g})')
        trend = summary['stage_trends'][stage]['spearman']
        ax.set_title(f'{stage}: Spearman {_interval_text(trend)}', fontsize=8)
        ax.set_xlabel('log10 box area (pixels^2)')
        ax.set_ylabel('mean dilation rate of the person')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = osp.join(out_dir, f'trend_{stage}.png')
        fig.savefig(path, dpi=100)
        files.append(path)
    return files
