# Copyright (c) mmadc contributors. All rights reserved.
"""The command-line tools' expected errors, reported as one line.

Every mistake a user can make on a tool's command line (a missing config,
a file that is not a checkpoint, a checkpoint of another model, an output
that would replace a file) raises a subclass of :class:`CliError` whose
message is one line naming the argument or file and what was expected.
:func:`run_cli` runs a tool's ``main`` and prints such an error as
argparse prints a usage error (``PROG: error: ...``) instead of a
traceback. Any other exception is a bug of the tool or of a library and
keeps its traceback.
"""
import os.path as osp
import sys
from typing import Callable, Optional, TypeVar

T = TypeVar('T')


class CliError(Exception):
    """A user's mistake on a tool's command line; one-line message."""


class InputFileError(CliError, ValueError):
    """A path given as an input file that is not a usable file."""


class MissingFileError(InputFileError, FileNotFoundError):
    """An input file that does not exist (also a ``FileNotFoundError``, as
    callers of the checks have caught until now)."""


def check_input_file(path: str, what: str, expected: str = 'a file') -> None:
    """Raise unless ``path`` is an existing file.

    Args:
        path (str): The path.
        what (str): How it was given, for the message (e.g. ``'config'``).
        expected (str): What it should be, for a folder given instead
            (e.g. ``'a config file'``).

    Raises:
        InputFileError: ``path`` is a folder.
        MissingFileError: ``path`` does not exist.
    """
    if osp.isdir(path):
        raise InputFileError(f'{what}: "{path}" is a folder, expected '
                             f'{expected}')
    if not osp.isfile(path):
        raise MissingFileError(f'{what}: "{path}" does not exist')


def run_cli(main: Callable[..., T],
            *args,
            prog: Optional[str] = None,
            status: int = 1,
            expected: tuple = ()) -> T:
    """Call ``main(*args)``; a :class:`CliError` (or one of ``expected``)
    ends the program with one line ``PROG: error: MESSAGE`` on stderr.

    Args:
        main (callable): The tool's main function.
        *args: Its arguments.
        prog (str, optional): The program name of the message. Defaults
            to the running script's file name, as argparse's.
        status (int): The exit status of such an error. Defaults to 1.
        expected (tuple[type]): Further exception types that the tool
            raises with a one-line message for its user.

    Returns:
        What ``main`` returns.

    Raises:
        SystemExit: With ``status``, after printing the message.
    """
    try:
        return main(*args)
    except (CliError, *expected) as err:
        prog = prog or osp.basename(sys.argv[0])
        # one line whatever the message holds: the last line of the output
        # is what users (and the tests) read
        message = ' '.join(str(err).split('\n'))
        print(f'{prog}: error: {message}', file=sys.stderr, flush=True)
        raise SystemExit(status) from None
