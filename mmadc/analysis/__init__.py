# Copyright (c) mmadc contributors. All rights reserved.
"""Analyses of the paper on top of the Runner: rate statistics by person
size (Fig. 6), keypoint error analysis (Fig. 5) and receptive fields
(Eq. 8), with their reports and plots.

Without MMEngine installed only the torch-only modules load
(:mod:`.benchmarking`, :mod:`.simple_baseline`), so that
``tools/analysis/gpu_check.py`` runs where only torch is installed.
"""
import importlib.util

if importlib.util.find_spec('mmengine') is not None:
    from .analysis_runner import (BOX_SOURCES, build_analysis_runner,
                                  load_analysis_config, run_analysis_metric)
    from .keypoint_error_report import (format_error_table,
                                        load_keypoint_predictions,
                                        plot_error_comparison)
    from .rate_statistics_report import plot_rate_statistics, write_rate_csv
    from .receptive_field_report import format_receptive_field_table
    from .report_files import dump_json, load_json, new_figure

__all__ = [
    'BOX_SOURCES', 'build_analysis_runner', 'dump_json', 'format_error_table',
    'format_receptive_field_table', 'load_analysis_config',
    'load_keypoint_predictions', 'plot_error_comparison',
    'plot_rate_statistics', 'run_analysis_metric', 'write_rate_csv',
    'load_json', 'new_figure'
]
