# Copyright (c) mmadc contributors. All rights reserved.
"""Keypoint error analysis of Ronchi and Perona (ICCV 2017), Fig. 5.

Every predicted keypoint of a prediction matched to a ground-truth (GT)
person is classified as *good*, *jitter*, *inversion*, *swap* or *miss*
from per-keypoint OKS similarities

    ks = exp(-d^2 / (2 * s^2 * k_i^2)),  s^2 = GT area,  k_i = 2 * sigma_i

(COCO's sigmas; ``d`` the distance between the predicted keypoint and a GT
keypoint). Only GT keypoints with visibility ``v > 0`` are scored, and only
GT keypoints with ``v > 0`` count as candidates.

Protocol (what this module does, step by step):

1. **Matching.** Per image, predictions are taken in descending score
   (stable for ties; at most ``max_dets``, 20 like COCOeval for keypoints)
   and each is matched to the unmatched GT person with the highest OKS
   (mean ``ks`` over the GT's visible keypoints), if that OKS is at least
   ``match_oks`` (0.1, the localisation threshold of Ronchi and Perona's
   analysis code). GT persons that are crowd regions or have no visible
   keypoint are never matched. Unmatched predictions (background false
   positives) and unmatched GTs (false negatives) are counted but not
   classified: keypoint errors are localisation errors of matched persons.
2. **Similarities** of predicted keypoint ``j`` (for the matched GT ``m``):
   ``own`` = ks with keypoint ``j`` of ``m``; ``inv`` = ks with the
   left/right counterpart of ``j`` of ``m`` (none for unpaired keypoints
   such as the nose); ``swap`` = the largest ks with keypoint ``j`` or its
   counterpart of any *other* person of the image (the semantically similar
   parts of another instance), each computed with that person's area.
3. **Classification** (``rule='definition'``, the default: the definitions
   of the paper, where the error with respect to the right keypoint takes
   precedence, then the same person, then other persons):

   - good: ``own >= 0.85``
   - jitter: ``0.5 <= own < 0.85``
   - inversion: ``own < 0.5`` and ``inv >= 0.5``
   - swap: ``own < 0.5``, ``inv < 0.5`` and ``swap >= 0.5``
   - miss: otherwise (not within the proximity of any such part)

   ``rule='argmax'`` follows the authors' analysis code instead: the
   candidate with the largest ks decides (good/jitter if it is ``own``,
   inversion if ``inv``, swap if another person's part), and the keypoint
   is a miss if that largest ks is below 0.5. The two rules differ only
   when a keypoint is near both its own joint and another candidate.

Proportions are counts over all scored keypoints (good included), overall
and per keypoint type.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

#: Keypoint classes, from best to worst.
ERROR_TYPES: Tuple[str, ...] = ('good', 'jitter', 'inversion', 'swap', 'miss')
#: The four error classes (everything but ``good``), as plotted in Fig. 5.
ERRORS: Tuple[str, ...] = ERROR_TYPES[1:]
GOOD_KS = 0.85
JITTER_KS = 0.5
MATCH_OKS = 0.1
RULES = ('definition', 'argmax')


def coco_keypoint_sigmas() -> np.ndarray:
    """COCO's 17 per-keypoint sigmas, as pycocotools' COCOeval uses."""
    from pycocotools.cocoeval import Params
    return np.asarray(Params(iouType='keypoints').kpt_oks_sigmas, float)


def counterpart_indices(names: Sequence[str]) -> List[int]:
    """Left/right counterpart of each keypoint, from the keypoint names.

    ``left_x`` and ``right_x`` are each other's counterpart; any other
    keypoint (e.g. ``nose``) is its own.

    Args:
        names (Sequence[str]): Keypoint names (a COCO category's
            ``keypoints``).

    Returns:
        list[int]: ``counterparts[j]`` is the index of ``j``'s counterpart.
    """
    index = {name: i for i, name in enumerate(names)}
    out = []
    for i, name in enumerate(names):
        other = None
        for a, b in (('left', 'right'), ('right', 'left')):
            for sep in ('_', ' ', '-'):
                if name.startswith(a + sep):
                    other = index.get(b + sep + name[len(a) + len(sep):])
        out.append(i if other is None else other)
    return out


def keypoint_similarity(pred_xy: np.ndarray, gt_xy: np.ndarray,
                        area: Union[float, np.ndarray],
                        sigmas: np.ndarray) -> np.ndarray:
    """Per-keypoint OKS similarity ``exp(-d^2 / (2 s^2 (2 sigma)^2))``.

    Args:
        pred_xy (np.ndarray): Predicted keypoints ``(..., K, 2)``.
        gt_xy (np.ndarray): GT keypoints ``(..., K, 2)`` (broadcast with
            ``pred_xy``).
        area (float | np.ndarray): GT area ``s^2`` (broadcast with the
            leading dimensions).
        sigmas (np.ndarray): ``(K,)`` sigmas.

    Returns:
        np.ndarray: ``(..., K)`` similarities in (0, 1].
    """
    d2 = np.square(np.asarray(pred_xy, float) -
                   np.asarray(gt_xy, float)).sum(-1)
    # COCOeval adds machine epsilon to the area so area 0 cannot divide by 0.
    scale = 2 * (np.asarray(area, float)[..., None] + np.spacing(1)) * \
        np.square(2 * np.asarray(sigmas, float))
    return np.exp(-d2 / scale)


def _person_arrays(anns: Sequence[dict],
                   num_kpts: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P, K, 2)`` keypoints, ``(P, K)`` visibility and ``(P,)`` areas."""
    xy = np.zeros((len(anns), num_kpts, 2))
    vis = np.zeros((len(anns), num_kpts), bool)
    areas = np.zeros(len(anns))
    for p, ann in enumerate(anns):
        kpts = np.asarray(ann.get('keypoints') or [0] * 3 * num_kpts,
                          float).reshape(-1, 3)
        if kpts.shape[0] != num_kpts:
            raise ValueError(f'GT annotation {ann.get("id")} has '
                             f'{kpts.shape[0]} keypoints, expected '
                             f'{num_kpts}')
        xy[p], vis[p] = kpts[:, :2], kpts[:, 2] > 0
        areas[p] = float(ann.get('area', 0.))
    return xy, vis, areas


def match_predictions(
        pred_xy: np.ndarray,
        scores: np.ndarray,
        gt_xy: np.ndarray,
        gt_vis: np.ndarray,
        gt_areas: np.ndarray,
        sigmas: np.ndarray,
        gt_valid: Optional[np.ndarray] = None,
        match_oks: float = MATCH_OKS,
        max_dets: Optional[int] = 20) -> List[Tuple[int, int, float]]:
    """Greedy one-to-one matching of one image's predictions to GTs by OKS.

    Args:
        pred_xy (np.ndarray): ``(D, K, 2)`` predicted keypoints.
        scores (np.ndarray): ``(D,)`` prediction scores.
        gt_xy (np.ndarray): ``(G, K, 2)`` GT keypoints.
        gt_vis (np.ndarray): ``(G, K)`` GT visibility (``v > 0``).
        gt_areas (np.ndarray): ``(G,)`` GT areas.
        sigmas (np.ndarray): ``(K,)`` sigmas.
        gt_valid (np.ndarray, optional): ``(G,)`` GTs that may be matched
            (default: those with a visible keypoint).
        match_oks (float): Minimum OKS of a match.
        max_dets (int, optional): Only the best-scoring ``max_dets``
            predictions are matched (None: all).

    Returns:
        list[tuple[int, int, float]]: ``(prediction index, GT index, OKS)``
        per match, in matching order.
    """
    num_gt = gt_xy.shape[0]
    if num_gt == 0 or pred_xy.shape[0] == 0:
        return []
    valid = gt_vis.any(1) if gt_valid is None else gt_valid & gt_vis.any(1)
    ks = keypoint_similarity(pred_xy[:, None], gt_xy[None], gt_areas[None],
                             sigmas)  # (D, G, K)
    num_vis = np.maximum(gt_vis.sum(1), 1)
    oks = (ks * gt_vis[None]).sum(-1) / num_vis[None]  # (D, G)
    order = np.argsort(-np.asarray(scores, float), kind='mergesort')
    if max_dets is not None:
        order = order[:max_dets]
    taken = ~valid
    matches = []
    for d in order:
        cand = np.where(taken, -np.inf, oks[d])
        g = int(np.argmax(cand))
        if cand[g] >= match_oks:
            taken[g] = True
            matches.append((int(d), g, float(oks[d, g])))
    return matches


def classify_keypoints(pred_xy: np.ndarray,
                       match: int,
                       gt_xy: np.ndarray,
                       gt_vis: np.ndarray,
                       gt_areas: np.ndarray,
                       sigmas: np.ndarray,
                       counterparts: Sequence[int],
                       rule: str = 'definition') -> List[Optional[str]]:
    """Classify the keypoints of one prediction matched to GT ``match``.

    Args:
        pred_xy (np.ndarray): ``(K, 2)`` predicted keypoints.
        match (int): Index of the matched GT person in ``gt_xy``.
        gt_xy (np.ndarray): ``(P, K, 2)`` keypoints of all GT persons of
            the image.
        gt_vis (np.ndarray): ``(P, K)`` their visibility (``v > 0``).
        gt_areas (np.ndarray): ``(P,)`` their areas.
        sigmas (np.ndarray): ``(K,)`` sigmas.
        counterparts (Sequence[int]): Left/right counterpart of each
            keypoint (:func:`counterpart_indices`).
        rule (str): ``'definition'`` or ``'argmax'`` (see the module
            docstring).

    Returns:
        list[str | None]: One of :data:`ERROR_TYPES` per keypoint, None
        where the matched GT keypoint is not visible (not scored).
    """
    if rule not in RULES:
        raise ValueError(f'rule must be one of {RULES}, got {rule!r}')
    cp = np.asarray(counterparts)
    num_kpts = pred_xy.shape[0]
    # ks with keypoint j and with its counterpart, for every person
    same = keypoint_similarity(pred_xy[None], gt_xy, gt_areas, sigmas)
    flip = keypoint_similarity(pred_xy[None], gt_xy[:, cp], gt_areas, sigmas)
    same = np.where(gt_vis, same, -1.)
    flip = np.where(gt_vis[:, cp], flip, -1.)
    own = same[match]
    inv = np.where(cp != np.arange(num_kpts), flip[match], -1.)
    others = np.delete(np.maximum(same, flip), match, axis=0)
    swap = others.max(0) if others.shape[0] else np.full(num_kpts, -1.)

    labels: List[Optional[str]] = []
    for j in range(num_kpts):
        if not gt_vis[match, j]:
            labels.append(None)
            continue
        if rule == 'definition':
            if own[j] >= GOOD_KS:
                label = 'good'
            elif own[j] >= JITTER_KS:
                label = 'jitter'
            elif inv[j] >= JITTER_KS:
                label = 'inversion'
            elif swap[j] >= JITTER_KS:
                label = 'swap'
            else:
                label = 'miss'
        else:
            best = max(own[j], inv[j], swap[j])
            if best < JITTER_KS:
                label = 'miss'
            elif own[j] >= best:
                label = 'good' if own[j] >= GOOD_KS else 'jitter'
            elif inv[j] >= swap[j]:
                label = 'inversion'
            else:
                label = 'swap'
        labels.append(label)
    return labels


def _keypoint_category(gt: dict, category_id: Optional[int]) -> dict:
    """The GT category whose persons are analysed."""
    cats = [c for c in gt.get('categories', []) if c.get('keypoints')]
    if category_id is not None:
        cats = [c for c in cats if c['id'] == category_id]
        if not cats:
            raise ValueError(f'category_id: no keypoint category with id '
                             f'{category_id} in the ground truth')
    if len(cats) != 1:
        raise ValueError(
            'the ground truth must have exactly one category with '
            f'keypoints (found {len(cats)}); pass category_id')
    return cats[0]


def _proportions(counts: Dict[str, int]) -> Dict[str, float]:
    total = sum(counts.values())
    return {k: (v / total if total else 0.) for k, v in counts.items()}


def analyze_keypoint_errors(predictions: Sequence[dict],
                            ground_truth: dict,
                            sigmas: Optional[Sequence[float]] = None,
                            counterparts: Optional[Sequence[int]] = None,
                            rule: str = 'definition',
                            match_oks: float = MATCH_OKS,
                            max_dets: Optional[int] = 20,
                            category_id: Optional[int] = None,
                            source: str = 'predictions') -> dict:
    """Classify every scored keypoint of a set of predictions.

    Args:
        predictions (Sequence[dict]): COCO keypoint results (``image_id``,
            ``category_id``, ``keypoints`` as ``[x, y, score] * K``,
            ``score``), e.g. what mmpose's ``CocoMetric`` writes to
            ``<outfile_prefix>.keypoints.json``.
        ground_truth (dict): COCO keypoint annotations (``images``,
            ``annotations``, ``categories``).
        sigmas (Sequence[float], optional): Per-keypoint sigmas. Defaults
            to COCO's (17 keypoints).
        counterparts (Sequence[int], optional): Left/right counterpart of
            each keypoint. Defaults to :func:`counterpart_indices` of the
            category's keypoint names.
        rule (str): ``'definition'`` (default) or ``'argmax'``.
        match_oks (float): Minimum OKS of a prediction-GT match.
        max_dets (int, optional): Predictions matched per image, best
            scores first (None: all). Defaults to 20.
        category_id (int, optional): The keypoint category (default: the
            only one with keypoints).
        source (str): Name of the predictions for error messages.

    Returns:
        dict: ``counts`` and ``proportions`` per class, ``per_keypoint``
        (per keypoint name: ``scored``, ``counts``, ``proportions``), and
        ``num_predictions``, ``num_matched``, ``num_unmatched_predictions``,
        ``num_gt_persons``, ``num_unmatched_gt``,
        ``num_scored_keypoints``, the rule and the thresholds.
    """
    if rule not in RULES:
        raise ValueError(f'rule must be one of {RULES}, got {rule!r}')
    cat = _keypoint_category(ground_truth, category_id)
    names = list(cat['keypoints'])
    num_kpts = len(names)
    if sigmas is None:
        if num_kpts != 17:
            raise ValueError(f'sigmas: the category has {num_kpts} '
                             'keypoints; pass its sigmas (COCO defaults '
                             'are for 17)')
        sigmas = coco_keypoint_sigmas()
    sigmas = np.asarray(sigmas, float)
    if sigmas.shape != (num_kpts, ):
        raise ValueError(f'sigmas must have {num_kpts} values, got '
                         f'{sigmas.shape}')
    if counterparts is None:
        counterparts = counterpart_indices(names)
    if sorted(counterparts) != list(range(num_kpts)):
        raise ValueError('counterparts must be a permutation of the '
                         f'{num_kpts} keypoint indices, got {counterparts}')

    image_ids = {img['id'] for img in ground_truth.get('images', [])}
    gts_by_image: Dict[int, List[dict]] = {}
    for ann in ground_truth.get('annotations', []):
        if ann.get('category_id') == cat['id']:
            gts_by_image.setdefault(ann['image_id'], []).append(ann)
    preds_by_image: Dict[int, List[dict]] = {}
    for i, pred in enumerate(predictions):
        if 'category_id' in pred and pred['category_id'] != cat['id']:
            continue
        for key in ('image_id', 'keypoints'):
            if key not in pred:
                raise ValueError(f'{source}: prediction {i} has no {key!r}')
        if pred['image_id'] not in image_ids:
            raise ValueError(f'{source}: prediction {i} has image_id '
                             f'{pred["image_id"]}, which is not in the '
                             'ground truth')
        if len(pred['keypoints']) != 3 * num_kpts:
            raise ValueError(f'{source}: prediction {i} has '
                             f'{len(pred["keypoints"])} keypoint values, '
                             f'expected {3 * num_kpts} ([x, y, score] * '
                             f'{num_kpts})')
        preds_by_image.setdefault(pred['image_id'], []).append(pred)

    counts = OrderedDict((t, 0) for t in ERROR_TYPES)
    per_kpt = [OrderedDict((t, 0) for t in ERROR_TYPES) for _ in names]
    num_preds = sum(len(v) for v in preds_by_image.values())
    num_matched = 0
    num_gt = 0
    for image_id in sorted(image_ids):
        anns = gts_by_image.get(image_id, [])
        gt_xy, gt_vis, areas = _person_arrays(anns, num_kpts)
        valid = np.array([not a.get('iscrowd', 0) for a in anns], bool)
        num_gt += int((valid & gt_vis.any(1)).sum())
        preds = preds_by_image.get(image_id, [])
        if not preds or not anns:
            continue
        pred_xy = np.stack([
            np.asarray(p['keypoints'], float).reshape(-1, 3)[:, :2]
            for p in preds
        ])
        scores = np.array([float(p.get('score', 1.)) for p in preds])
        for d, g, _ in match_predictions(pred_xy, scores, gt_xy, gt_vis, areas,
                                         sigmas, valid, match_oks, max_dets):
            num_matched += 1
            labels = classify_keypoints(pred_xy[d], g, gt_xy, gt_vis, areas,
                                        sigmas, counterparts, rule)
            for j, label in enumerate(labels):
                if label is not None:
                    counts[label] += 1
                    per_kpt[j][label] += 1

    per_keypoint = OrderedDict()
    for name, kpt_counts in zip(names, per_kpt):
        per_keypoint[name] = dict(
            scored=sum(kpt_counts.values()),
            counts=kpt_counts,
            proportions=_proportions(kpt_counts))
    return OrderedDict(
        rule=rule,
        thresholds=dict(good=GOOD_KS, jitter=JITTER_KS, match_oks=match_oks),
        num_predictions=num_preds,
        num_matched=num_matched,
        num_unmatched_predictions=num_preds - num_matched,
        num_gt_persons=num_gt,
        num_unmatched_gt=num_gt - num_matched,
        num_scored_keypoints=sum(counts.values()),
        counts=counts,
        proportions=_proportions(counts),
        per_keypoint=per_keypoint)
