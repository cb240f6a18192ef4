# Copyright (c) mmadc contributors. All rights reserved.
"""Bookkeeping shared by the synthetic dataset generators.

Every generator writes ``synthetic_manifest.json`` into its output folder
*after* all other files. The manifest records the generator name, its
parameters and the size of every file written, so a later run can tell a
complete dataset (nothing to do) from an interrupted or different one (refuse
unless asked to overwrite) without hashing thousands of images. While a run
writes, ``synthetic_manifest.journal`` lists its files, so that overwriting
an interrupted run deletes exactly what it wrote and nothing of the user's.
"""
import json
import os
import os.path as osp
import sys
from typing import Callable, Iterable, List, Optional, Set

MANIFEST_NAME = 'synthetic_manifest.json'
#: Files a run is writing, kept when it is interrupted (see OutputJournal).
JOURNAL_NAME = 'synthetic_manifest.journal'
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
    journal = osp.join(out_dir, JOURNAL_NAME)
    if osp.isfile(journal):
        os.remove(journal)
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


class OutputJournal:
    """Where a generator writes its files, each recorded before it is written.

    :meth:`path` appends the file to ``synthetic_manifest.journal`` and
    returns where to write it, so that a run that is interrupted leaves the
    list of what it wrote behind, and a later ``--force`` deletes exactly
    those files. :func:`write_manifest` replaces the journal at the end.
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.file = osp.join(out_dir, JOURNAL_NAME)

    def record(self, rel_paths: Iterable[str]) -> None:
        """Append ``rel_paths`` (relative to the dataset root)."""
        os.makedirs(self.out_dir, exist_ok=True)
        with open(self.file, 'a', encoding='utf-8') as f:
            f.writelines(f'{rel}\n' for rel in rel_paths)

    def path(self, rel: str) -> str:
        """Record ``rel`` and return its absolute path (folders made)."""
        self.record([rel])
        path = osp.join(self.out_dir, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        return path


def recorded_files(out_dir: str) -> Set[str]:
    """Files a generator recorded writing into ``out_dir``: those of its
    manifest and of the journal an interrupted run left."""
    manifest = read_manifest(out_dir) or {}
    files = set(manifest.get('files', {}) or {})
    journal = osp.join(out_dir, JOURNAL_NAME)
    if osp.isfile(journal) and not osp.islink(journal):
        with open(journal, encoding='utf-8') as f:
            files.update(line.rstrip('\n') for line in f if line.strip())
    return files


def _is_under(rel: str, owned: Iterable[str]) -> bool:
    return any(rel == o or rel.startswith(o + os.sep) for o in owned)


def foreign_paths(out_dir: str, owned: Iterable[str],
                  recorded: Set[str]) -> List[str]:
    """What is in the way of a generator and not its own.

    Every file (or symbolic link) at or under an owned path that no manifest
    or journal records, and every symbolic link on the way to an owned path
    (writing through it would leave the folder), relative to ``out_dir``.
    """
    foreign = set()
    for rel in list(owned) + [MANIFEST_NAME, JOURNAL_NAME]:
        parts = rel.split(os.sep)
        for i in range(1, len(parts) + 1):
            sub = os.sep.join(parts[:i])
            if osp.islink(osp.join(out_dir, sub)):
                foreign.add(f'{sub} (a symbolic link)')
        path = osp.join(out_dir, rel)
        if osp.islink(path) or not osp.lexists(path):
            continue
        if osp.isdir(path):
            for dirpath, dirnames, filenames in os.walk(path):
                for name in dirnames + filenames:
                    full = osp.join(dirpath, name)
                    sub = osp.relpath(full, out_dir)
                    if osp.islink(full):
                        foreign.add(f'{sub} (a symbolic link)')
                    elif name in filenames and sub not in recorded:
                        foreign.add(sub)
        elif rel not in recorded and rel not in (MANIFEST_NAME, JOURNAL_NAME):
            foreign.add(rel)
    return sorted(foreign)


def prepare_output(out_dir: str, owned: Iterable[str],
                   overwrite: bool) -> OutputJournal:
    """Make sure nothing a generator would write already exists.

    Args:
        out_dir (str): Dataset root folder (created if missing).
        owned (Iterable[str]): Paths relative to ``out_dir`` that the
            generator writes (files or whole folders). The manifest and
            the journal are always included.
        overwrite (bool): Delete what a previous run of a generator wrote
            there (the files its manifest or journal records) instead of
            raising. Nothing else is ever deleted, and no symbolic link
            is followed.

    Returns:
        OutputJournal: Where to write the new files.

    Raises:
        FileExistsError: If an owned path exists and ``overwrite`` is False,
            or if anything in the way is not a previous run's (naming it).
    """
    owned = list(owned)
    existing = [
        rel for rel in owned + [MANIFEST_NAME, JOURNAL_NAME]
        if osp.lexists(osp.join(out_dir, rel))
    ]
    if existing and not overwrite:
        raise FileExistsError(
            f'{out_dir} already contains {", ".join(existing)}; pass '
            'overwrite=True to delete and regenerate them')
    recorded = recorded_files(out_dir)
    foreign = foreign_paths(out_dir, owned, recorded)
    if foreign:
        more = f' and {len(foreign) - 5} more' if len(foreign) > 5 else ''
        raise FileExistsError(
            f'refusing to write into {out_dir}: it holds files no generator '
            f'run recorded writing, where this one writes: '
            f'{", ".join(foreign[:5])}{more}. Nothing was changed, --force '
            'or not: move them away or choose another folder.')
    journal = OutputJournal(out_dir)
    ours = sorted(r for r in recorded if _is_under(r, owned))
    # The journal takes over the manifest's list first, so that an
    # interrupted deletion never leaves files no record claims, and the
    # manifest goes before any file, so the folder never looks complete.
    journal.record(ours)
    manifest = osp.join(out_dir, MANIFEST_NAME)
    if osp.lexists(manifest):
        os.remove(manifest)
    for rel in ours:
        path = osp.join(out_dir, rel)
        if osp.isfile(path):
            os.remove(path)
    for rel in owned:  # folders the deletion left empty
        top = osp.join(out_dir, rel)
        for dirpath, _, _ in sorted(os.walk(top), reverse=True):
            if not os.listdir(dirpath):
                os.rmdir(dirpath)
    os.makedirs(out_dir, exist_ok=True)
    return journal


def check_counts(seed: int, **counts: int) -> None:
    """Raise ValueError for a negative image count or seed (numpy refuses
    negative seeds) before a generator writes anything."""
    for name, value in dict(counts, seed=seed).items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f'{name} must be a non-negative int, got '
                             f'{value!r}')


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
    owned = list(owned)
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
            f'folder, or pass --force to delete what an earlier run of a '
            f'generator recorded writing under [{owned}] (never other '
            'files) and regenerate.',
            file=sys.stderr)
        return 1
    print(f'Generating the {label} dataset into {out_dir} ({params})')
    try:
        paths = generate(overwrite=state != ABSENT, progress=print_progress)
    # bad arguments and a user's files in the way are refused before
    # anything is written
    except (ValueError, FileExistsError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    for key, path in paths.items():
        print(f'  {key}: {path}')
    print('Done.')
    return 0
