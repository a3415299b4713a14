# Added by patch_uwsgi: cibuildwheel builds every Python in this same folder, and
# uWSGI reuses an object file unless the core CFLAGS it records in
# uwsgibuild.lastcflags change. Naming the running interpreter in those CFLAGS (an
# unused -D define, through APPEND_CFLAGS, which uWSGI adds before it compares) makes
# uWSGI itself rebuild everything when the Python changes and reuse the objects when
# it does not. Nothing is stored here, so it holds however many processes import this
# file before the one that builds (pip and pypa/build run each hook in its own).
# `patch_uwsgi revert` removes this block.
def _patch_uwsgi_rebuild_guard():
    import binascii
    import os
    import sys
    base_prefix = getattr(sys, 'real_prefix', None) or getattr(sys, 'base_prefix', None) or sys.prefix
    prefix = os.path.realpath(base_prefix)
    if not isinstance(prefix, bytes):
        prefix = os.fsencode(prefix)
    python = '-DPATCH_UWSGI_PYTHON=%d.%d.%d%s-%08x' % (
        sys.version_info[0], sys.version_info[1], sys.version_info[2],
        getattr(sys, 'abiflags', ''), binascii.crc32(prefix) & 0xffffffff)
    flags = [flag for flag in os.environ.get('APPEND_CFLAGS', '').split()
             if not flag.startswith('-DPATCH_UWSGI_PYTHON=')]
    os.environ['APPEND_CFLAGS'] = ' '.join(flags + [python])


_patch_uwsgi_rebuild_guard()
del _patch_uwsgi_rebuild_guard
