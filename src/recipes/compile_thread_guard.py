# Added by patch_uwsgi: uwsgiconfig.py compiles in threads (thread_compiler). A failing
# compiler ends the build, but an exception inside such a thread (OSError from
# subprocess.call, MemoryError, a write to a closed pipe) only ends that thread: the build
# goes on, links whatever object files are on disk (stale ones from another Python) and
# exits 0. This makes any exception in a compile thread print its traceback and end the
# whole build with status 1. The single-threaded path (CPUCOUNT=1) compiles in the main
# thread, where an exception already ends the build. `patch_uwsgi revert` removes this block.
def _patch_uwsgi_compile_thread_guard():
    import os
    import sys
    import threading
    import traceback
    run = threading.Thread.run
    if getattr(run, 'patch_uwsgi', False):
        return

    def run_or_end_the_build(self):
        # Python 3 keeps the target in _target, Python 2 in _Thread__target.
        target = getattr(self, '_target', None) or getattr(self, '_Thread__target', None)
        if getattr(target, '__name__', None) != 'thread_compiler':
            return run(self)
        try:
            run(self)
        except Exception:
            try:
                traceback.print_exc()
                sys.stderr.write('patch_uwsgi: a compile thread of uwsgiconfig.py died; '
                                 'stopping the build instead of linking stale objects\n')
                sys.stderr.flush()
            finally:
                os._exit(1)
    run_or_end_the_build.patch_uwsgi = True
    threading.Thread.run = run_or_end_the_build


_patch_uwsgi_compile_thread_guard()
del _patch_uwsgi_compile_thread_guard
