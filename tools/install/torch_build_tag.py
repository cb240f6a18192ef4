# Copyright (c) mmadc contributors. All rights reserved.
"""Print the tag of the installed torch build, e.g.
``torch-2.1.2+cu121-a8e7c98cb95f-cp311``.

setup_env.sh keeps each mmcv wheel it builds in a folder of this name:
mmcv's compiled ops link against one exact torch build (version, commit,
Python), and pip's own wheel cache, keyed by mmcv's version and Python
only, would serve a wheel built for another ("mmcv._ext: undefined
symbol").
"""
import sys

import torch


def torch_build_tag() -> str:
    """The tag of the torch build this interpreter imports."""
    commit = (torch.version.git_version or 'unknown')[:12]
    python = 'cp%d%d' % sys.version_info[:2]
    return f'torch-{torch.__version__}-{commit}-{python}'


if __name__ == '__main__':
    print(torch_build_tag())
