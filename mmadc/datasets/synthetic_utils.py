# Copyright (c) mmadc contributors. All rights reserved.
"""Bookkeeping shared by the synthetic dataset generators.

Every generator writes ``synthetic_manifest.json`` into its output folder
*after* all other files. The manifest records the generator name, its
parameters and the size of every file written, so a later run can tell a
complete dataset (nothing to do) from an interrupted or different one (refuse
unless asked to overwrite) without hashing thousands of images.
"""
import json
import os
import os.path as osp
import shutil
import sys
from typing import Callable, Iterable, Optional

MANIFEST_NAME = 'synthetic_manifest.json'
MANIFEST_VERSION = 1

#: Called as ``progress(split, done, total)`` after each image is written.
ProgressFn = Callable[[str, int, int], None]

# Output folder states reported by :func:`inspect_output`.
ABSENT = 'absent'
COMPLETE = 'complete'
DIFFERENT = 'different'
INCOMPLETE = 'incomplete'


def write_json(path: str, obj) -> None:
    """Write ``obj`` as compact JSON with a stable byte layout."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, separators=(',', ':'), ensure_ascii=True)


def write_manifest(out_dir: str, generator: str, params: dict,
                   rel_paths: Iterable[str]) -> str:
    """Record what a generator wrote; call it after every other file.

    Args:
        out_dir (str): Dataset root folder.
        generator (str): Name of the generator, e.g. ``'synthetic_coco'``.
        params (dict): JSON-serialisable generation parameters.
        rel_paths (Iterable[str]): Written files relative to ``out_dir``.

    Returns:
        str: Path of the manifest file.
    """
    files = {
        rel: osp.getsize(osp.join(out_dir, rel))
        for rel in sorted(rel_paths)
    }
    manifest = dict(
        manifest_version=MANIFEST_VERSION,
        generator=generator,
        params=params,
        files=files)
    path = osp.join(out_dir, MANIFEST_NAME)
    write_json(path, manifest)
    return path


def read_manifest(out_dir: str) -> Optional[dict]:
    """Return the manifest of ``out_dir`` or None if absent/unreadable."""
    path = osp.join(out_dir, MANIFEST_NAME)
    try:
        with open(path, encoding='utf-8') as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def inspect_output(out_dir: str, generator: str, params: dict) -> str:
    """Classify an output folder before generating into it.

    Args:
        out_dir (str): Dataset root folder.
        generator (str): Expected generator name.
        params (dict): Parameters the caller is about to generate with.

    Returns:
        str: One of ``'absent'`` (missing or empty folder), ``'complete'``
        (same generator and parameters, every recorded file present with
        its recorded size), ``'different'`` (a manifest with another
        generator or other parameters) or ``'incomplete'`` (anything else,
        e.g. an interrupted run or unrelated files).
    """
    if not osp.isdir(out_dir) or not os.listdir(out_dir):
        return ABSENT
    manifest = read_manifest(out_dir)
    if manifest is None:
        return INCOMPLETE
    if (manifest.get('manifest_version') != MANIFEST_VERSION
            or manifest.get('generator') != generator
            or manifest.get('params') != params):
        return DIFFERENT
    for rel, size in manifest.get('files', {}).items():
        path = osp.join(out_dir, rel)
        if not osp.isfile(path) or osp.getsize(path) != size:
            return INCOMPLETE
    return COMPLETE


def describe_state(state: str) -> str:
    """A sentence explaining an :func:`inspect_output` state to users."""
    return {
        ABSENT:
        'the folder is missing or empty',
        COMPLETE:
        'the dataset is complete',
        DIFFERENT:
        f'it was generated with other parameters (see '
        f'{MANIFEST_NAME})',
        INCOMPLETE:
        'files are missing (an interrupted run?) or it holds '
        f'files this generator did not write (no valid {MANIFEST_NAME})',
    }[state]


def prepare_output(out_dir: str, owned: Iterable[str],
                   overwrite: bool) -> None:
    """Make sure nothing a generator would write already exists.

    Args:
        out_dir (str): Dataset root folder (created if missing).
        owned (Iterable[str]): Paths relative to ``out_dir`` that the
            generator writes (files or whole folders). The manifest is
            always included.
        overwrite (bool): Delete the owned paths that exist instead of
            raising. Nothing outside ``owned`` is ever deleted.

    Raises:
        FileExistsError: If an owned path exists and ``overwrite`` is False.
    """
    owned = list(owned) + [MANIFEST_NAME]
    existing = [rel for rel in owned if osp.lexists(osp.join(out_dir, rel))]
    if existing and not overwrite:
        raise FileExistsError(
            f'{out_dir} already contains {", ".join(existing)}; pass '
            'overwrite=True to delete and regenerate them')
    # Delete the manifest first so an interrupted overwrite never looks
    # complete afterwards.
    for rel in reversed(existing):
        path = osp.join(out_dir, rel)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    os.makedirs(out_dir, exist_ok=True)


def split_seed(seed: int, split_code: int, index: int) -> list:
    """Seed material for one image so that images do not depend on how many
    others are generated (image ``i`` is the same for any split size)."""
    return [int(seed), int(split_code), int(index)]


def print_progress(split: str, done: int, total: int) -> None:
    """Progress callback of the generators for command-line tools."""
    step = max(1, total // 10)
    if done == total or done % step == 0:
        print(f'  {split}: {done}/{total} images', flush=True)


def run_generator_cli(out_dir: str, generator: str, params: dict,
                      owned: Iterable[str], label: str, force: bool,
                      generate: Callable[..., dict]) -> int:
    """The command-line flow shared by the dataset generators.

    Does nothing if ``out_dir`` already holds this dataset; refuses (exit
    code 1, nothing changed) if it holds anything else unless ``force``;
    otherwise calls ``generate(overwrite=..., progress=...)``.

    Args:
        out_dir (str): Dataset root.
        generator (str): Generator name recorded in the manifest.
        params (dict): Generation parameters recorded in the manifest.
        owned (Iterable[str]): Paths the generator writes (and ``force``
            may delete), relative to ``out_dir``.
        label (str): Human-readable dataset name for messages.
        force (bool): Whether to replace a different or incomplete dataset.
        generate (callable): Writes the dataset; returns written paths.

    Returns:
        int: The process exit code.
    """
    state = inspect_output(out_dir, generator, params)
    if state == COMPLETE:
        print(f'{out_dir} already holds this {label} dataset (complete); '
              'nothing to do.')
        return 0
    if state != ABSENT and not force:
        owned = ', '.join(list(owned) + [MANIFEST_NAME])
        print(
            f'error: refusing to write into {out_dir}: '
            f'{describe_state(state)}. Nothing was changed. Choose another '
            f'folder, or pass --force to delete [{owned}] there and '
            'regenerate.',
            file=sys.stderr)
        return 1
    print(f'Generating the {label} dataset into {out_dir} ({params})')
    paths = generate(overwrite=state != ABSENT, progress=print_progress)
    for key, path in paths.items():
        print(f'  {key}: {path}')
    print('Done.')
    return 0
