# Copyright (c) mmadc contributors. All rights reserved.
"""Keypoint error classes (Ronchi and Perona; the paper's Fig. 5) as an
evaluation metric."""
from collections import OrderedDict
from typing import Optional

from mmengine.fileio import load
from mmpose.evaluation.metrics import CocoMetric
from mmpose.registry import METRICS

from ..functional.keypoint_errors import (ERROR_TYPES, MATCH_OKS, RULES,
                                          analyze_keypoint_errors)


@METRICS.register_module()
class KeypointErrorMetric(CocoMetric):
    """Proportions of good, jitter, inversion, swap and miss keypoints.

    mmpose's :class:`~mmpose.evaluation.metrics.CocoMetric` with the
    keypoint error analysis in place of COCOeval: the predictions are
    rescored, suppressed and written as COCO keypoint results exactly as
    for the AP (``score_mode``, ``nms_mode``, ``outfile_prefix`` and the
    other arguments are ``CocoMetric``'s), then every keypoint of the
    results matched to a ground-truth person is classified
    (:func:`~mmadc.evaluation.functional.analyze_keypoint_errors`, with
    the dataset's sigmas). The logged metrics are the proportions of the
    five classes among the scored keypoints; the whole report (counts,
    per keypoint type, matching numbers) is kept in :attr:`report` of the
    main process.

    .. code-block:: python

        test_evaluator = [
            dict(type='CocoMetric', ann_file=ANN_FILE),
            dict(type='KeypointErrorMetric', ann_file=ANN_FILE)]

    Args:
        rule (str): ``'definition'`` (the paper's definitions, default) or
            ``'argmax'`` (the authors' code), see
            :mod:`~mmadc.evaluation.functional.keypoint_errors`.
        match_oks (float): Minimum OKS of a prediction-person match.
            Defaults to 0.1.
        max_dets (int, optional): Predictions matched per image, best
            scores first (None: all). Defaults to 20, as COCOeval.
        prefix (str, optional): Prefix of the metric names. Defaults to
            ``'keypoint_errors'``.
        **kwargs: The arguments of ``CocoMetric`` (``ann_file``,
            ``score_mode``, ``nms_mode``, ``outfile_prefix``, ...).
    """

    default_prefix: Optional[str] = 'keypoint_errors'

    def __init__(self,
                 rule: str = 'definition',
                 match_oks: float = MATCH_OKS,
                 max_dets: Optional[int] = 20,
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        if rule not in RULES:
            raise ValueError(f'rule must be one of {RULES}, got {rule!r}')
        if kwargs.get('format_only'):
            raise ValueError('format_only: KeypointErrorMetric evaluates; '
                             'use CocoMetric to only write results')
        super().__init__(prefix=prefix, **kwargs)
        self.rule = rule
        self.match_oks = match_oks
        self.max_dets = max_dets
        self.report: Optional[dict] = None

    def _do_python_keypoint_eval(self, outfile_prefix: str) -> list:
        """Classify the keypoints of the results CocoMetric wrote.

        Args:
            outfile_prefix (str): Prefix of ``<prefix>.keypoints.json``.

        Returns:
            list[tuple[str, float]]: The proportion of each class.
        """
        predictions = load(f'{outfile_prefix}.keypoints.json')
        self.report = analyze_keypoint_errors(
            predictions,
            self.coco.dataset,
            sigmas=self.dataset_meta['sigmas'],
            rule=self.rule,
            match_oks=self.match_oks,
            max_dets=self.max_dets,
            source=f'{outfile_prefix}.keypoints.json')
        return [(name, self.report['proportions'][name])
                for name in ERROR_TYPES]

    def compute_metrics(self, results: list) -> 'OrderedDict[str, float]':
        return OrderedDict(super().compute_metrics(results))
