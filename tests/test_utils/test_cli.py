# Copyright (c) mmadc contributors. All rights reserved.
"""The one entry-point wrapper: the project's expected errors become one
line and an exit status, anything else keeps its traceback."""
import pytest

from mmadc.utils.cli import (CliError, InputFileError, MissingFileError,
                             check_input_file, run_cli)


def _fail(error):
    raise error


def test_expected_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(_fail, CliError('--out: "x"\nexists'), prog='tool.py')
    assert info.value.code == 1
    assert capsys.readouterr().err == 'tool.py: error: --out: "x" exists\n'
    with pytest.raises(SystemExit) as info:
        run_cli(_fail, CliError('refused'), prog='tool.py', status=2)
    assert info.value.code == 2


def test_unexpected_errors_keep_their_traceback(capsys):
    with pytest.raises(ZeroDivisionError):
        run_cli(lambda: 1 / 0)
    with pytest.raises(FileNotFoundError):
        run_cli(_fail, FileNotFoundError('a bug, not a user\'s mistake'))
    assert capsys.readouterr().err == ''
    # unless the tool declares them expected
    with pytest.raises(SystemExit):
        run_cli(_fail, FileNotFoundError('x'), expected=(FileNotFoundError, ))


def test_returns_what_main_returns():
    assert run_cli(lambda a, b: a + b, 1, 2) == 3


def test_every_project_error_is_expected():
    """The errors the tools raise for a user's mistake all reach the
    wrapper as CliError."""
    from mmadc.apis import DemoError
    from mmadc.deployment import ExportError
    from mmadc.entrypoints.run_guard import RunMismatchError
    from mmadc.utils.checkpoint_file import CheckpointFileError
    from mmadc.utils.output_path import OutputPathError
    for error in (DemoError, ExportError, RunMismatchError,
                  CheckpointFileError, OutputPathError, MissingFileError):
        assert issubclass(error, CliError), error


def test_check_input_file(tmp_path):
    with pytest.raises(
            MissingFileError, match='config: ".*nope.py" does '
            'not exist'):
        check_input_file(str(tmp_path / 'nope.py'), 'config')
    with pytest.raises(FileNotFoundError):  # as callers catch it
        check_input_file(str(tmp_path / 'nope.py'), 'config')
    with pytest.raises(
            InputFileError, match='is a folder, expected a config file'):
        check_input_file(str(tmp_path), 'config', 'a config file')
    (tmp_path / 'a.py').write_text('')
    check_input_file(str(tmp_path / 'a.py'), 'config')
