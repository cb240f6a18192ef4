# Copyright (c) mmadc contributors. All rights reserved.
"""The generator CLIs never delete anything without ``--force``."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import REPO_ROOT
from synthetic_data import generate_cityscapes, generate_coco_keypoints

TOOLS = osp.join(REPO_ROOT, 'tools', 'dataset_generators')
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


# a user's files where each generator writes
USER_FILES = {
    'coco': ['train2017/mine.jpg', 'val2017/mine.jpg'],
    'cityscapes':
    ['leftImg8bit/train/mytown/mine.png', 'gtFine/train/mytown/mine.png'],
}


@pytest.mark.parametrize('cli,args,make', CASES, ids=IDS)
def test_force_never_deletes_a_users_files(tmp_path, capsys, cli, args, make):
    """--force over an earlier generation refuses, naming them, when the
    user's own files sit in the generator's folders; nothing is touched."""
    out = str(tmp_path / 'data')
    make(out)
    name = IDS[CASES.index((cli, args, make))]
    for rel in USER_FILES[name]:
        path = osp.join(out, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('mine')
    before = _snapshot(out)
    main = _load_cli(cli).main
    assert main([out, *args, '--seed', '7', '--force']) == 1
    err = capsys.readouterr().err
    assert 'Nothing was changed' in err
    for rel in USER_FILES[name]:
        assert rel in err
    assert _snapshot(out) == before


def test_force_never_follows_a_symlink(tmp_path, capsys):
    """A symlinked annotations/ (pointing at the user's real annotations)
    is refused, and its target is left as it was."""
    real = tmp_path / 'real_annotations'
    real.mkdir()
    target = real / 'person_keypoints_train2017.json'
    target.write_text('{"the user": "annotations"}')
    out = tmp_path / 'data'
    _make_coco(str(out))
    import shutil
    shutil.rmtree(out / 'annotations')
    (out / 'annotations').symlink_to(real, target_is_directory=True)
    main = _load_cli(COCO_CLI).main
    assert main([str(out), *COCO_ARGS, '--force']) == 1
    assert 'symbolic link' in capsys.readouterr().err
    assert target.read_text() == '{"the user": "annotations"}'
    assert sorted(os.listdir(real)) == [target.name]


@pytest.mark.parametrize('cli,args,make', CASES, ids=IDS)
def test_force_recovers_an_interrupted_run(tmp_path, capsys, cli, args, make):
    """A run killed after its first image wrote no manifest; its journal
    lets --force delete exactly its files and regenerate."""
    out = str(tmp_path / 'data')

    def interrupt(split, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        (generate_coco_keypoints
         if make is _make_coco else generate_cityscapes)(
             out, progress=interrupt)
    main = _load_cli(cli).main
    assert main([out, *args]) == 1  # incomplete: refused without --force
    assert main([out, *args, '--force']) == 0
    capsys.readouterr()
    assert main([out, *args]) == 0
    assert 'nothing to do' in capsys.readouterr().out
    assert not osp.exists(osp.join(out, 'synthetic_manifest.journal'))


@pytest.mark.parametrize('cli,args,bad', [
    (COCO_CLI, COCO_ARGS, ['--num-train', '-5']),
    (COCO_CLI, COCO_ARGS, ['--num-val', '-1']),
    (COCO_CLI, COCO_ARGS, ['--jpeg-quality', '0']),
    (COCO_CLI, COCO_ARGS, ['--jpeg-quality', '500']),
    (COCO_CLI, COCO_ARGS, ['--seed', '-3']),
    (COCO_CLI, COCO_ARGS, ['--max-persons', '0']),
    (CS_CLI, CS_ARGS, ['--num-train', '-5']),
    (CS_CLI, CS_ARGS, ['--seed', '-3']),
    (CS_CLI, CS_ARGS, ['--image-size', '32', '16']),
])
def test_bad_arguments_are_refused_before_writing(tmp_path, cli, args, bad):
    """One-line error naming the argument; no folder left behind (a
    leftover empty folder would block the corrected rerun)."""
    out = tmp_path / 'data'
    proc = subprocess.run(
        [sys.executable, cli, str(out), *args, *bad],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert 'Traceback' not in proc.stderr, proc.stderr
    assert bad[0].lstrip('-').replace('-', '_') in last.replace('-', '_'), last
    assert not out.exists()
    assert 'Done' not in proc.stdout


@pytest.mark.parametrize('kwargs', [
    dict(num_train_images=-1),
    dict(seed=-1),
    dict(jpeg_quality=0),
])
def test_library_refuses_bad_arguments_before_writing(tmp_path, kwargs):
    out = tmp_path / 'data'
    with pytest.raises(ValueError):
        generate_coco_keypoints(str(out), **kwargs)
    assert not out.exists()
