# Copyright (c) mmadc contributors. All rights reserved.
"""Reports of the keypoint error analysis (Fig. 5): reading COCO keypoint
results, the Fig. 5 style plots and the text table of
:func:`~mmadc.evaluation.functional.analyze_keypoint_errors` reports."""
import os
import os.path as osp
from collections import OrderedDict
from typing import List

import numpy as np

from mmadc.evaluation.functional.keypoint_errors import ERROR_TYPES, ERRORS
from .report_files import load_json, new_figure

#: Colours of the classes in the plots.
COLOURS = {
    'good': '#8fbc8f',
    'jitter': '#8c4646',
    'inversion': '#d96459',
    'swap': '#f2ae72',
    'miss': '#f2e394'
}
#: Bar colours of the compared prediction files (baseline first).
FILE_COLOURS = ('#9e9e9e', '#3b75af', '#ef8636', '#519e3e', '#c53a32')


def load_keypoint_predictions(path: str) -> List[dict]:
    """Read COCO keypoint results (a JSON list; mmpose's
    ``<outfile_prefix>.keypoints.json`` is one)."""
    data = load_json(path, 'predictions')
    if isinstance(data, dict) and isinstance(data.get('annotations'), list):
        data = data['annotations']
    if not isinstance(data, list):
        raise ValueError(f'predictions: "{path}" is not a COCO results list '
                         '(a JSON list of {image_id, category_id, '
                         'keypoints, score})')
    return data


def plot_error_comparison(reports: 'OrderedDict[str, dict]',
                          out_dir: str) -> List[str]:
    """Fig. 5 style plots of several reports side by side.

    Writes ``errors_pie.png`` (one pie per report: the share of each class
    among the scored keypoints) and ``errors_bar.png`` (the four error
    classes in percent, one bar per report in each group).

    Args:
        reports (OrderedDict[str, dict]): Label (e.g. ``'baseline'``,
            ``'ADC'``) to :func:`analyze_keypoint_errors` report.
        out_dir (str): Output directory.

    Returns:
        list[str]: The written files.
    """
    os.makedirs(out_dir, exist_ok=True)
    labels = list(reports)
    fig = new_figure(4.5 * len(labels), 4.8)
    for i, label in enumerate(labels):
        ax = fig.add_subplot(1, len(labels), i + 1)
        prop = reports[label]['proportions']
        shown = [t for t in ERROR_TYPES if prop[t] > 0]
        if shown:
            ax.pie([prop[t] for t in shown],
                   labels=[f'{t}\n{100 * prop[t]:.1f}%' for t in shown],
                   colors=[COLOURS[t] for t in shown],
                   startangle=90,
                   counterclock=False,
                   wedgeprops=dict(edgecolor='white'),
                   textprops=dict(fontsize=9))
        ax.set_title(f'({chr(ord("a") + i)}) {label}\n'
                     f'{reports[label]["num_scored_keypoints"]} keypoints')
        ax.axis('equal')
    fig.suptitle('Keypoint error analysis (Ronchi & Perona)')
    fig.tight_layout()
    pie = osp.join(out_dir, 'errors_pie.png')
    fig.savefig(pie, dpi=100)

    fig = new_figure(max(6., 1.1 * len(ERRORS) * len(labels) + 2), 4.)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(labels)
    x = np.arange(len(ERRORS))
    for i, label in enumerate(labels):
        values = [100 * reports[label]['proportions'][t] for t in ERRORS]
        bars = ax.bar(
            x + (i - (len(labels) - 1) / 2) * width,
            values,
            width,
            label=label,
            color=FILE_COLOURS[i % len(FILE_COLOURS)],
            edgecolor='black')
        ax.bar_label(bars, labels=[f'{v:.1f}' for v in values], fontsize=8)
    ax.set_xticks(x, [t for t in ERRORS])
    ax.set_ylabel('% of scored keypoints')
    ax.set_title(' vs '.join(labels))
    ax.legend()
    fig.tight_layout()
    bar = osp.join(out_dir, 'errors_bar.png')
    fig.savefig(bar, dpi=100)
    return [pie, bar]


def format_error_table(reports: 'OrderedDict[str, dict]') -> str:
    """Plain-text table of the class proportions (percent) per report."""
    header = ['predictions'] + list(ERROR_TYPES) + ['keypoints']
    rows = [[label] +
            [f'{100 * report["proportions"][t]:.2f}'
             for t in ERROR_TYPES] + [str(report['num_scored_keypoints'])]
            for label, report in reports.items()]
    widths = [
        max(len(r[i]) for r in [header] + rows) for i in range(len(header))
    ]
    lines = [
        '  '.join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths)))
        for r in [header] + rows
    ]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)
