"""PEP 517 backend of patch-uwsgi: maturin's, after one check.

pip falls back to the sdist only where no wheel of patch-uwsgi fits the platform. Building the
sdist needs Rust; without it maturin would try to download a toolchain (or fail with cargo's
own errors), which in a cibuildwheel container is a long wall of text. Instead, say in one
message which platform lacks a wheel and what to do. Set PATCH_UWSGI_BUILD_FROM_SOURCE=1 to
let maturin go ahead anyway (it then installs Rust into a temporary folder).
"""
import os
import platform
import shutil

import maturin
from maturin import build_sdist, get_requires_for_build_sdist  # noqa: F401 (PEP 517 hooks)

WHEELS = ('manylinux2014 (glibc 2.17+) x86_64, i686, aarch64, ppc64le, s390x, armv7l; '
          'musllinux_1_2 x86_64, aarch64, i686')


def _platform():
    libc, version = platform.libc_ver()
    if libc:
        libc = '%s %s' % (libc, version)
    else:
        libc = 'musl or another C library'
    return '%s %s, %s' % (platform.system(), platform.machine(), libc)


def _need_rust():
    if shutil.which('cargo') or os.environ.get('PATCH_UWSGI_BUILD_FROM_SOURCE'):
        return
    raise SystemExit(
        'patch-uwsgi: no wheel fits this platform (%s), and building one from the sdist needs '
        'Rust, which is not installed (no `cargo` on PATH). Wheels exist for %s. Use one of '
        'those platforms, install Rust (https://rustup.rs) and retry, or set '
        'PATCH_UWSGI_BUILD_FROM_SOURCE=1 to let the build download a Rust toolchain.'
        % (_platform(), WHEELS))


def get_requires_for_build_wheel(config_settings=None):
    _need_rust()
    return maturin.get_requires_for_build_wheel(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _need_rust()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _need_rust()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)
