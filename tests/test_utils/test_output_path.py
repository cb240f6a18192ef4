# Copyright (c) mmadc contributors. All rights reserved.
"""The output-path guard every writing tool runs before its work: no
user's file is replaced without --overwrite, an input never, and every
refusal is one line naming the argument."""
import os

import pytest

from mmadc.utils.cli import CliError
from mmadc.utils.output_path import (OutputPathError, check_distinct_outputs,
                                     check_output_dir, check_output_files)

ONNX = ('.onnx', )


def _refused(match, func, *args, **kwargs):
    with pytest.raises(OutputPathError, match=match) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert '\n' not in message
    assert isinstance(info.value, CliError)
    return message


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / 'm.onnx'
    out.write_bytes(b'mine')
    message = _refused('exists; pass --overwrite', check_output_files,
                       [str(out)], '--out', ONNX)
    assert message.startswith(f'--out: "{out}"')
    check_output_files([str(out)], '--out', ONNX, overwrite=True)
    assert out.read_bytes() == b'mine'  # a check writes nothing


def test_sidecar_of_the_writer_is_checked_as_the_output(tmp_path):
    out = tmp_path / 'm.onnx'
    (tmp_path / 'm.onnx.data').write_bytes(b'mine')
    _refused(
        r'm\.onnx\.data" \(written with ".*m\.onnx"\) exists',
        check_output_files, [str(out)],
        '--out',
        ONNX,
        sidecar_suffixes=('.data', ))
    check_output_files([str(out)],
                       '--out',
                       ONNX,
                       overwrite=True,
                       sidecar_suffixes=('.data', ))


def test_an_input_is_never_replaced(tmp_path):
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'weights')
    inputs = [(str(ckpt), 'checkpoint')]
    _refused(
        'is the checkpoint .*not even with --overwrite',
        check_output_files, [str(ckpt)],
        '--out', ('.pth', ),
        overwrite=True,
        inputs=inputs)
    # through a link, and as the writer's sidecar (model.pth = X + .data)
    link = tmp_path / 'link.pth'
    os.symlink(ckpt, link)
    _refused(
        'is the checkpoint',
        check_output_files, [str(link)],
        '--out', ('.pth', ),
        overwrite=True,
        inputs=inputs)
    side = tmp_path / 'x.onnx.data'
    os.link(ckpt, side)
    _refused(
        'x.onnx.data" .*is the checkpoint',
        check_output_files, [str(tmp_path / 'x.onnx')],
        '--out',
        ONNX,
        overwrite=True,
        inputs=inputs,
        sidecar_suffixes=('.data', ))
    assert ckpt.read_bytes() == b'weights'


def test_folder_and_extension_before_any_work(tmp_path):
    _refused('is a folder, expected a file path', check_output_files,
             [str(tmp_path)], '--out', ONNX)
    _refused(r'm.txt" has the extension ".txt", expected one of .json, .pkl',
             check_output_files, [str(tmp_path / 'm.txt')], '--out',
             ('.json', '.pkl'))
    _refused('has no extension, expected one of .png', check_output_files,
             [str(tmp_path / 'out')], '--out-file', ('.png', ))
    _refused('the folder ".*missing" of .* does not exist', check_output_files,
             [str(tmp_path / 'missing' / 'm.onnx')], '--out', ONNX)
    # extensions are matched case-insensitively (IMG.PNG)
    check_output_files([str(tmp_path / 'M.ONNX')], '--out', ONNX)


def test_missing_folders_a_writer_makes(tmp_path):
    check_output_files([str(tmp_path / 'a' / 'b' / 'o.png')],
                       '--out-file', ('.png', ),
                       make_dirs=True)
    (tmp_path / 'f').write_text('')
    _refused(
        'f" is a file, so the folder ".*b" cannot be made',
        check_output_files, [str(tmp_path / 'f' / 'b' / 'o.png')],
        '--out-file', ('.png', ),
        make_dirs=True)
    assert not (tmp_path / 'a').exists()


def test_output_dir(tmp_path):
    afile = tmp_path / 'file.png'
    afile.write_text('')
    _refused(f'--out-dir: "{afile}" is a file, expected a folder',
             check_output_dir, str(afile), '--out-dir')
    _refused('is a file, so the folder', check_output_dir, str(afile / 'sub'),
             '--out-dir')
    full = tmp_path / 'full'
    full.mkdir()
    (full / 'x.png').write_text('')
    _refused('not empty .*--overwrite', check_output_dir, str(full), '--out',
             False)
    check_output_dir(str(full), '--out', True)
    check_output_dir(str(full), '--work-dir')  # writes new names only
    check_output_dir(str(tmp_path / 'new' / 'dir'), '--out', False)


def test_two_arguments_same_file(tmp_path):
    same = str(tmp_path / 'same.pkl')
    _refused('--dump: ".*same.pkl" is also given as --out',
             check_distinct_outputs, {
                 '--out': same,
                 '--dump': str(tmp_path / '.' / 'same.pkl')
             })
    check_distinct_outputs({'--out': same, '--dump': None})
    check_distinct_outputs({'--out': same, '--dump': str(tmp_path / 'b.pkl')})
