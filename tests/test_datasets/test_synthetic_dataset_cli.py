# Copyright (c) mmadc contributors. All rights reserved.
"""The generator CLIs never delete anything without ``--force``."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmadc.datasets import generate_cityscapes, generate_coco_keypoints

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO_ROOT, 'tools', 'dataset_converters')
COCO_CLI = osp.join(TOOLS, 'generate_synthetic_coco.py')
CS_CLI = osp.join(TOOLS, 'generate_synthetic_cityscapes.py')

COCO_ARGS = ['--num-train', '2', '--num-val', '1', '--image-size', '96', '64']
CS_ARGS = ['--num-train', '1', '--num-val', '1', '--image-size', '128', '64']


def _load_cli(path):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _snapshot(root):
    """Relative path -> (size, mtime) of every file under ``root``."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            st = os.stat(path)
            out[osp.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return out


def _make_coco(out):
    generate_coco_keypoints(
        out, num_train_images=2, num_val_images=1, image_size=(96, 64))


def _make_cs(out):
    generate_cityscapes(out, num_train=1, num_val=1, image_size=(128, 64))


CASES = [(COCO_CLI, COCO_ARGS, _make_coco), (CS_CLI, CS_ARGS, _make_cs)]
IDS = ['coco', 'cityscapes']


@pytest.mark.parametrize('cli,args,make', CASES, ids=IDS)
def test_cli_refuses_different_dataset(tmp_path, cli, args, make):
    out = str(tmp_path / 'data')
    make(out)
    before = _snapshot(out)
    # Same sizes, other seed: a different dataset.
    proc = subprocess.run([sys.executable, cli, out, *args, '--seed', '7'],
                          capture_output=True,
                          text=True,
                          cwd=str(tmp_path),
                          timeout=300)
    assert proc.returncode != 0
    assert 'refusing' in proc.stderr and '--force' in proc.stderr
    assert 'other parameters' in proc.stderr
    assert _snapshot(out) == before


@pytest.mark.parametrize('cli,args,make', CASES, ids=IDS)
def test_cli_complete_incomplete_and_force(tmp_path, capsys, cli, args, make):
    main = _load_cli(cli).main
    out = str(tmp_path / 'data')
    make(out)

    # Complete and identical: nothing to do, nothing touched.
    before = _snapshot(out)
    assert main([out, *args]) == 0
    assert 'nothing to do' in capsys.readouterr().out
    assert _snapshot(out) == before

    # Incomplete (a file lost): refused, the rest is kept.
    victim = sorted(before)[0]
    os.remove(osp.join(out, victim))
    before.pop(victim)
    assert main([out, *args]) != 0
    assert 'refusing' in capsys.readouterr().err
    assert _snapshot(out) == before

    # --force regenerates, but leaves files it does not own alone.
    with open(osp.join(out, 'notes.txt'), 'w') as f:
        f.write('mine')
    assert main([out, *args, '--force']) == 0
    assert osp.isfile(osp.join(out, victim))
    assert osp.isfile(osp.join(out, 'notes.txt'))
    assert main([out, *args]) == 0
    assert 'nothing to do' in capsys.readouterr().out


@pytest.mark.parametrize('cli,args', [c[:2] for c in CASES], ids=IDS)
def test_cli_refuses_unrelated_folder(tmp_path, capsys, cli, args):
    out = tmp_path / 'data'
    out.mkdir()
    (out / 'keep.txt').write_text('unrelated')
    assert _load_cli(cli).main([str(out), *args]) != 0
    assert 'refusing' in capsys.readouterr().err
    assert os.listdir(out) == ['keep.txt']
