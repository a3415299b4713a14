# Added by patch_uwsgi: cibuildwheel builds every Python in this same folder, and
# uWSGI reuses an object file unless the core CFLAGS it records in
# uwsgibuild.lastcflags change. Naming the running interpreter in those CFLAGS (an
# unused -D define, through APPEND_CFLAGS, which uWSGI adds before it compares) makes
# uWSGI itself rebuild everything when the Python changes and reuse the objects when
# it does not. uWSGI writes the new CFLAGS before it compiles, so a build that does not
# finish (a compile error, a dead compile thread, a failed link, an interrupt) leaves
# them beside objects of the previous Python, which the next build would take as up to
# date: a build marks itself unfinished in uwsgibuild.patch_uwsgi_unfinished until it
# exits well, and a build that finds the mark drops uwsgibuild.lastcflags, which makes
# uWSGI compile every object again. `patch_uwsgi revert` removes this block.
def _patch_uwsgi_rebuild_guard():
    import atexit
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
    if getattr(sys.exit, 'patch_uwsgi', False):
        return  # this process already keeps the mark
    mark = os.path.abspath('uwsgibuild.patch_uwsgi_unfinished')
    try:
        if os.path.exists(mark) and os.path.exists('uwsgibuild.lastcflags'):
            os.remove('uwsgibuild.lastcflags')
        open(mark, 'w').close()
    except (IOError, OSError):
        return  # a tree that cannot be written builds nothing either
    failed = []
    exit_process = sys.exit
    hook = sys.excepthook

    def exit_noting_failure(status=None):
        if status not in (None, 0):
            failed.append(status)
        exit_process(status)

    def excepthook_noting_failure(kind, value, trace):
        failed.append(kind)
        hook(kind, value, trace)

    def unmark_if_finished():
        # os._exit (uWSGI's dead compiler, the compile-thread guard) never gets here.
        if not failed and os.path.exists(mark):
            os.remove(mark)
    exit_noting_failure.patch_uwsgi = True
    sys.exit = exit_noting_failure
    sys.excepthook = excepthook_noting_failure
    atexit.register(unmark_if_finished)


_patch_uwsgi_rebuild_guard()
del _patch_uwsgi_rebuild_guard
