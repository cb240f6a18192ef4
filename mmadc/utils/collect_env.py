# Copyright (c) mmadc contributors. All rights reserved.
"""The environment for bug reports: ``python -m mmadc.utils.collect_env``."""
from collections import OrderedDict

from mmengine.utils.dl_utils import collect_env as collect_base_env

from .version_check import installed_version


def mmcv_ops_status() -> str:
    """Report whether mmcv's compiled ops (``mmcv._ext``) load."""
    try:
        from mmcv.utils import ext_loader

        # DCN and PSAMask are the compiled ops mmadc configs rely on.
        ext_loader.load_ext('_ext', ['deform_conv_forward', 'psamask_forward'])
    except Exception as exc:  # any failure means the ops are unusable
        return f'unavailable ({type(exc).__name__}: {exc})'
    return 'available'


def adc_kernel_status() -> str:
    """Report whether mmadc's native ADC CPU kernel was built."""
    from mmadc.ops.native_cpu import gemm_library_in_use
    library = gemm_library_in_use()
    if library is None:
        return ('not built (ADC runs the reference implementation; '
                'reinstall with a C++ compiler: pip install '
                '--no-build-isolation -e .)')
    return f'available (float32 GEMMs: {library})'


def collect_env() -> 'OrderedDict[str, str]':
    """Collect versions of the stack mmadc runs on.

    Returns:
        OrderedDict: Name to version/status, mmengine's base report
        (Python, CUDA, compilers, PyTorch, TorchVision, OpenCV, MMEngine)
        followed by the OpenMMLab packages and mmadc itself.
    """
    env = collect_base_env()
    # torch's multi-kilobyte build-flag dump drowns the rest of the report
    env.pop('PyTorch compiling details', None)
    import numpy
    env['NumPy'] = numpy.__version__
    for name, module, dist in [('MMCV', 'mmcv', 'mmcv'),
                               ('MMDetection', 'mmdet', 'mmdet'),
                               ('MMPose', 'mmpose', 'mmpose'),
                               ('MMSegmentation', 'mmseg', 'mmsegmentation')]:
        env[name] = installed_version(module, dist) or 'not installed'
    env['MMCV compiled ops'] = mmcv_ops_status()
    from mmadc.version import __version__
    env['mmadc'] = __version__
    env['mmadc ADC CPU kernel'] = adc_kernel_status()
    return env


def main() -> None:
    for name, value in collect_env().items():
        print(f'{name}: {value}')


if __name__ == '__main__':
    main()
