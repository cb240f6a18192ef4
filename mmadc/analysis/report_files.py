# Copyright (c) mmadc contributors. All rights reserved.
"""The file side of every analysis report: reading the JSON inputs with
errors that name the argument, writing the JSON reports, and matplotlib
figures that leave pyplot's global state alone."""
import json
import os.path as osp
import re


def load_json(path: str, arg_name: str):
    """Read a JSON file, naming the argument and the file if it is missing
    or not JSON."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{arg_name}: "{path}" does not exist')
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{arg_name}: "{path}" is not valid JSON '
                             f'(truncated or not JSON?): {err}') from None


def dump_json(obj, path: str) -> None:
    """Write JSON indented, but with lists of plain values on one line
    (per-channel lists would otherwise take a line per number)."""
    text = json.dumps(obj, indent=1)
    text = re.sub(r'\[\s+([^\[\]{}"]*?)\s+\]',
                  lambda m: '[' + re.sub(r'\s+', ' ', m.group(1)) + ']', text)
    with open(path, 'w') as f:
        f.write(text + '\n')


def new_figure(width: float, height: float):
    """A matplotlib figure on the Agg canvas, without touching pyplot's
    global backend (the tools run inside other programs' processes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig
