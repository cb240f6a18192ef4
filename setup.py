# Copyright (c) mmadc contributors. All rights reserved.
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmadc', 'version.py')) as f:
        exec(compile(f.read(), 'mmadc/version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> list:
    """Read a requirements file, skipping comments and blank lines."""
    with open(osp.join(HERE, fname)) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='mmadc',
    version=get_version(),
    description='Adaptive Dilated Convolution for MMPose and MMSegmentation',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(include=['mmadc', 'mmadc.*']),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={
        'tests': parse_requirements('requirements/tests.txt'),
        # mim resolves these (OpenMMLab convention: mmcv is not a hard pip
        # requirement because it is built from source or installed by mim).
        'mim': parse_requirements('requirements/mminstall.txt'),
    },
    zip_safe=False,
)
