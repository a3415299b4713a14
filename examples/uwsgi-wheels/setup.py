"""The project's own build: uWSGI vendored in ./uwsgi (an unpacked uWSGI sdist), compiled by
its own `uwsgiconfig.py` for the Python running this build, and shipped as the wheel's `uwsgi`
script, the shape of uWSGI's own wheels. cibuildwheel's before-build has patched ./uwsgi for
that Python (`patch_uwsgi apply {package}/uwsgi`); nothing here knows about patch-uwsgi.
UWSGI_PROFILE picks the build profile (default: pyonly, uWSGI's core and python plugin).
"""
import os
import subprocess
import sys

from setuptools import setup
from distutils.command.build_scripts import build_scripts  # setuptools provides distutils
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildUwsgi(build_scripts):
    """Compile ./uwsgi/uwsgi and put it where the wheel's scripts are collected (the
    executable does not exist before the build, so it cannot be listed in `scripts`)."""

    def finalize_options(self):
        build_scripts.finalize_options(self)
        self.scripts = []

    def get_source_files(self):
        return []

    def run(self):
        tree = os.path.join(HERE, 'uwsgi')
        profile = os.environ.get('UWSGI_PROFILE', 'pyonly')
        subprocess.check_call([sys.executable, 'uwsgiconfig.py', '--build', profile], cwd=tree)
        self.mkpath(self.build_dir)
        built = os.path.join(self.build_dir, 'uwsgi')
        self.copy_file(os.path.join(tree, 'uwsgi'), built)
        # setuptools' install_scripts installs the build folder only when there are scripts.
        self.distribution.scripts = [built]


class BinaryDistribution(Distribution):
    """An executable inside: a platform wheel for one Python (cpXY-cpXY-linux_*) with a
    script to install."""

    def has_ext_modules(self):
        return True

    def has_scripts(self):
        return True


setup(
    py_modules=[],
    distclass=BinaryDistribution,
    cmdclass={'build_scripts': BuildUwsgi},
    zip_safe=False,
)
