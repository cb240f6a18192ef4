# Copyright (c) mmadc contributors. All rights reserved.
import os
import os.path as osp
import shutil
import sys
import warnings
from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))

# The native CPU kernel of ADC (mmadc/ops/csrc/adc_cpu.cpp, which includes
# the headers next to it: one translation unit). It needs torch
# at build time (install with --no-build-isolation) and a C++ compiler.
# MMADC_WITH_CPU_KERNEL: "auto" (default) builds it when possible and
# otherwise installs the pure-PyTorch reference path with a warning; "1"
# makes a failed build an error; "0" skips it.
KERNEL_MODE = os.environ.get('MMADC_WITH_CPU_KERNEL', 'auto')
if KERNEL_MODE not in ('auto', '0', '1'):
    raise SystemExit('MMADC_WITH_CPU_KERNEL must be auto, 0 or 1, got '
                     f'{KERNEL_MODE!r}')


def kernel_build_config() -> dict:
    """ext_modules and cmdclass for the native kernel (empty if skipped)."""
    if KERNEL_MODE == '0':
        return {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError as exc:  # e.g. pip's build isolation hides torch
        if KERNEL_MODE == '1':
            raise SystemExit(
                'MMADC_WITH_CPU_KERNEL=1 needs torch at build time '
                '(pip install --no-build-isolation)') from exc
        warnings.warn('torch is not importable at build time: installing '
                      'mmadc without its native CPU kernel (ADC falls back '
                      'to the slower reference implementation)')
        return {}

    class OptionalBuildExtension(BuildExtension):
        """Builds the kernel; in "auto" mode a failure only warns."""

        def run(self) -> None:
            try:
                super().run()
            except Exception as exc:  # compiler missing or failing
                if KERNEL_MODE == '1':
                    raise
                warnings.warn(
                    f'building the native ADC CPU kernel failed ({exc}); '
                    'installing without it: ADC falls back to the slower '
                    'reference implementation')

    openmp = ['-fopenmp']  # at::parallel_for is OpenMP-based in torch
    return dict(
        ext_modules=[
            CppExtension(
                'mmadc.ops._adc_cpu', ['mmadc/ops/csrc/adc_cpu.cpp'],
                depends=[
                    'mmadc/ops/csrc/adc_rate_regressor.h',
                    'mmadc/ops/csrc/adc_sampling.h',
                    'mmadc/ops/csrc/adc_schedule.h'
                ],
                extra_compile_args=['-O3'] + openmp,
                extra_link_args=openmp)
        ],
        cmdclass=dict(build_ext=OptionalBuildExtension))


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


def add_mim_extension() -> None:
    """Place configs, tools and model-index.yml under mmadc/.mim, where
    ``mim search/train/test mmadc`` look for them (OpenMMLab packaging, as
    mmpose's setup.py): symlinks for an editable install, copies for a
    wheel or sdist. mmadc/.mim holds nothing else (git-ignored)."""
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'mmadc', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src, tar = osp.join(HERE, name), osp.join(mim_path, name)
        if osp.islink(tar) or osp.isfile(tar):
            os.remove(tar)
        elif osp.isdir(tar):
            shutil.rmtree(tar)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), tar)
        elif osp.isdir(src):
            shutil.copytree(
                src,
                tar,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, tar)


add_mim_extension()

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
        # ONNX export (tools/deployment/pytorch2onnx.py)
        'deploy': parse_requirements('requirements/deploy.txt'),
        # mim resolves these (OpenMMLab convention: mmcv is not a hard pip
        # requirement because it is built from source or installed by mim).
        'mim': parse_requirements('requirements/mminstall.txt'),
    },
    zip_safe=False,
    **kernel_build_config(),
)
