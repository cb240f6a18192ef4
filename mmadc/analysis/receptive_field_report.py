# Copyright (c) mmadc contributors. All rights reserved.
"""The text table of observed ADC rates and receptive fields (Eq. 8;
:class:`~mmadc.evaluation.functional.ReceptiveFieldStats`)."""
from typing import List


def format_receptive_field_table(rows: List[dict]) -> str:
    """A plain-text table of :meth:`ReceptiveFieldStats.summary`."""

    def fmt(value) -> str:
        return '-' if value is None else f'{value:.2f}'

    header = ('layer', 'k', 'd', 'rate mean', 'rate min', 'rate max',
              'RF mean', 'RF min', 'RF max')
    lines = [[
        row['layer'],
        'x'.join(str(k) for k in row['kernel_size']),
        'x'.join(str(d) for d in row['dilation']),
        fmt(row['rate']['mean']),
        fmt(row['rate']['min']),
        fmt(row['rate']['max']),
        fmt(row['receptive_field']['mean']),
        fmt(row['receptive_field']['min']),
        fmt(row['receptive_field']['max']),
    ] for row in rows]
    widths = [
        max(len(str(col)) for col in column) for column in zip(header, *lines)
    ]
    out = []
    for i, line in enumerate([list(header)] + lines):
        out.append('  '.join(
            str(col).ljust(w) if j == 0 else str(col).rjust(w)
            for j, (col, w) in enumerate(zip(line, widths))))
        if i == 0:
            out.append('  '.join('-' * w for w in widths))
    return '\n'.join(out)
