# Added by patch_uwsgi: cibuildwheel builds every Python in this same folder, and
# uWSGI would reuse object files compiled against another Python's headers. When
# the interpreter differs from the last build's, force a full rebuild.
# `patch_uwsgi revert` removes this block.
def _patch_uwsgi_rebuild_guard():
    import os
    import sys
    if not os.path.isfile('uwsgi.h'):
        return
    stamp_path = 'uwsgibuild.lastpython'
    base_prefix = getattr(sys, 'real_prefix', None) or getattr(sys, 'base_prefix', None) or sys.prefix
    current = '%d.%d.%d%s %s\n' % (sys.version_info[0], sys.version_info[1], sys.version_info[2],
                                   getattr(sys, 'abiflags', ''), os.path.realpath(base_prefix))
    try:
        stamp = open(stamp_path)
        try:
            previous = stamp.read()
        finally:
            stamp.close()
    except (IOError, OSError):
        previous = None
    if previous != current:
        os.environ['UWSGI_FORCE_REBUILD'] = '1'
        try:
            stamp = open(stamp_path, 'w')
            try:
                stamp.write(current)
            finally:
                stamp.close()
        except (IOError, OSError):
            pass


_patch_uwsgi_rebuild_guard()
del _patch_uwsgi_rebuild_guard
