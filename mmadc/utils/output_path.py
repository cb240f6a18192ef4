# Copyright (c) mmadc contributors. All rights reserved.
"""Check a tool's output paths before it does any work.

A tool that writes a file checks its path first, so that a mistake costs
a second, not an evaluation or an export, and so that no user's file is
lost: an existing output (and any file the writer puts next to it, such
as the ``.data`` of an ONNX model with external weights) is replaced only
with ``--overwrite``, and never when it is one of the tool's own inputs
(the checkpoint, the config). The folder must exist and the extension be
one the writer supports, so the writer cannot fail after the work is done.
Every refusal is an :class:`OutputPathError` with a one-line message
naming the argument and what was expected.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

from .cli import CliError


class OutputPathError(CliError, ValueError):
    """An output path a tool refuses; one-line message."""


def _file_key(path: str):
    """What identifies a file: its inode if it exists (the same file
    through a hard or symbolic link), else its resolved path."""
    if osp.exists(path):
        st = os.stat(path)
        return st.st_dev, st.st_ino
    return osp.realpath(path)


def _same_file(a: str, b: str) -> bool:
    return _file_key(a) == _file_key(b)


def _extension_of(path: str) -> str:
    ext = osp.splitext(path)[1]
    return f'the extension "{ext}"' if ext else 'no extension'


def check_output_files(paths: Sequence[str],
                       arg: str,
                       extensions: Sequence[str],
                       overwrite: bool = False,
                       inputs: Sequence[Tuple[str, str]] = (),
                       sidecar_suffixes: Sequence[str] = (),
                       make_dirs: bool = False) -> None:
    """Raise unless every path in ``paths`` can be written as asked.

    Args:
        paths (Sequence[str]): The files the tool will write.
        arg (str): The argument that gave them, for the message (e.g.
            ``'--out'``).
        extensions (Sequence[str]): The extensions the writer supports
            (lower case, with the dot), e.g. ``('.json', '.pkl')``.
        overwrite (bool): Whether existing files may be replaced (the
            tool's ``--overwrite``).
        inputs (Sequence[tuple[str, str]]): ``(path, what)`` of the
            tool's input files (e.g. ``(ckpt, 'checkpoint')``): an output
            that is one of them is refused even with ``overwrite``.
        sidecar_suffixes (Sequence[str]): Suffixes of files the writer
            puts next to each output (``'.data'``: ``model.onnx.data``);
            they are checked as the outputs are.
        make_dirs (bool): The writer makes missing folders (as
            ``mmcv.imwrite``): a missing folder is accepted if it can be
            made. Defaults to False (the folder must exist).

    Raises:
        OutputPathError: A path is a folder, has another extension, lies
            in a missing folder (or one that cannot be made), is one of
            ``inputs``, or exists (it or
            one of its sidecars) and ``overwrite`` is False.
    """
    expected = ', '.join(extensions)
    kept = {_file_key(p): (p, what) for p, what in inputs if p is not None}
    existing = []
    for path in paths:
        if osp.isdir(path):
            raise OutputPathError(f'{arg}: "{path}" is a folder, expected a '
                                  f'file path ({expected})')
        targets = [(path, '')] + [(path + s, f' (written with "{path}")')
                                  for s in sidecar_suffixes]
        # an input first: the most telling account of that mistake
        for target, of in targets:
            if _file_key(target) in kept:
                given, what = kept[_file_key(target)]
                raise OutputPathError(
                    f'{arg}: "{target}"{of} is the {what} "{given}"; choose '
                    'another path (an input is never replaced, not even '
                    'with --overwrite)')
        if not path.lower().endswith(tuple(extensions)):
            raise OutputPathError(f'{arg}: "{path}" has '
                                  f'{_extension_of(path)}, expected one of '
                                  f'{expected}')
        folder = osp.dirname(osp.abspath(path))
        if make_dirs:
            check_output_dir(osp.dirname(path) or folder, arg)
        elif not osp.isdir(folder):
            raise OutputPathError(
                f'{arg}: the folder "{osp.dirname(path) or folder}" of '
                f'"{path}" does not exist; create it first')
        existing += [f'"{t}"{of}' for t, of in targets if osp.lexists(t)]
    if existing and not overwrite:
        more = f' (and {len(existing) - 1} more)' if len(existing) > 1 \
            else ''
        raise OutputPathError(f'{arg}: {existing[0]} exists{more}; pass '
                              '--overwrite to replace it')


def check_output_dir(
    path: str,
    arg: str,
    overwrite: Optional[bool] = None,
    inputs: Sequence[Tuple[str, str]] = ()
) -> None:
    """Raise unless ``path`` is, or can be made, a folder to write into.

    Args:
        path (str): The folder.
        arg (str): The argument that gave it, for the message.
        overwrite (bool, optional): None: the tool never replaces files in
            the folder (it writes new names); False: an existing non-empty
            folder is refused, since the tool would replace files of the
            same names; True: such a folder is accepted.
        inputs (Sequence[tuple[str, str]]): ``(path, what)`` of the tool's
            input files, which the folder must not be.

    Raises:
        OutputPathError: ``path`` or a folder above it is a file, or it is
            a non-empty folder and ``overwrite`` is False.
    """
    for kept, what in inputs:
        if kept is not None and _same_file(path, kept):
            raise OutputPathError(f'{arg}: "{path}" is the {what}; expected '
                                  'a folder for the outputs')
    if osp.exists(path) and not osp.isdir(path):
        raise OutputPathError(f'{arg}: "{path}" is a file, expected a folder')
    above = osp.dirname(osp.abspath(path))
    while not osp.exists(above):
        above = osp.dirname(above)
    if not osp.isdir(above):
        raise OutputPathError(f'{arg}: "{above}" is a file, so the folder '
                              f'"{path}" cannot be made')
    if overwrite is False and osp.isdir(path) and os.listdir(path):
        raise OutputPathError(
            f'{arg}: the folder "{path}" is not empty and files in it would '
            'be replaced; choose a new folder or pass --overwrite')


def check_distinct_outputs(paths: Dict[str, Optional[str]]) -> None:
    """Raise if two arguments name the same output (the second write
    would replace the first).

    Args:
        paths (dict[str, str | None]): Argument to path (None: not given).

    Raises:
        OutputPathError: Two of them are the same file.
    """
    given = [(arg, path) for arg, path in paths.items() if path is not None]
    for i, (arg, path) in enumerate(given):
        for first_arg, first in given[:i]:
            if _same_file(path, first):
                raise OutputPathError(
                    f'{arg}: "{path}" is also given as {first_arg}; the two '
                    'need different files (one would replace the other)')
