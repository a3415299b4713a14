"""Builds the server executable with uWSGI's own build system and ships it as package data.

The uWSGI source tree is MYSERVER_UWSGI_SOURCE (default: ./uwsgi, an unpacked uWSGI sdist).
In cibuildwheel, `before-build` runs `patch_uwsgi apply` on that tree for each Python, so
the python plugin links the container's static libpython; nothing here knows about it.
"""
import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = 'myserver'


def uwsgi_source():
    return os.path.abspath(os.environ.get('MYSERVER_UWSGI_SOURCE', os.path.join(HERE, 'uwsgi')))


class BuildServer(build_ext):
    """Compile the server: the project's build profile and embedded files go into uWSGI's
    tree, then `uwsgiconfig.py --build <profile>` with the Python being built for."""

    def run(self):
        source = uwsgi_source()
        if not os.path.isfile(os.path.join(source, 'uwsgiconfig.py')):
            sys.exit('myserver: no uWSGI source tree at %s (set MYSERVER_UWSGI_SOURCE)' % source)
        shutil.copy(os.path.join(HERE, 'server', 'myserver.ini'),
                    os.path.join(source, 'buildconf', 'myserver.ini'))
        for name in ('myserver_boot.py', 'myserver_embedded.ini'):
            shutil.copy(os.path.join(HERE, 'server', name), os.path.join(source, name))
        subprocess.check_call([sys.executable, 'uwsgiconfig.py', '--build', 'myserver'],
                              cwd=source)


class BuildPy(build_py):
    """Package data: the executable, built first, as <package>/bin/<server>."""

    def run(self):
        self.run_command('build_ext')
        build_py.run(self)
        target = os.path.join(self.build_lib, 'myserver', 'bin')
        if not os.path.isdir(target):
            os.makedirs(target)
        shutil.copy2(os.path.join(uwsgi_source(), SERVER), os.path.join(target, SERVER))


class BinaryDistribution(Distribution):
    """An executable inside: a platform wheel for one Python (cpXY-cpXY-linux_*)."""

    def has_ext_modules(self):
        return True


setup(
    packages=['myserver'],
    distclass=BinaryDistribution,
    cmdclass={'build_ext': BuildServer, 'build_py': BuildPy},
    zip_safe=False,
)
