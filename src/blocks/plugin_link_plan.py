# Added by patch_uwsgi: link the python plugin as the plan in
# plugins/python/patch_uwsgi_plan.json says for the interpreter running this build
# (static libpython after every object file, its libraries after it, no -lpython,
# no -L/-rpath/LD_RUN_PATH into the build machine's Python). Re-run
# `patch_uwsgi apply` for each Python; `patch_uwsgi revert` removes this block.
def _patch_uwsgi_link_plan(libs, ldflags, runtime_finder):
    import json
    import os
    import sys
    if 'UWSGI_PYTHON_NOLIB' in os.environ:
        # pyuwsgi: the interpreter that imports uWSGI provides libpython.
        return libs, ldflags, None

    def native(value):
        # json gives unicode on Python 2; uwsgiconfig.py joins plain str.
        if sys.version_info[0] < 3 and not isinstance(value, str):
            return value.encode('utf-8')
        return value

    plan_path = os.environ.get('PATCH_UWSGI_PLAN') or os.path.join('plugins', 'python', 'patch_uwsgi_plan.json')
    base_prefix = getattr(sys, 'real_prefix', None) or getattr(sys, 'base_prefix', None) or sys.prefix
    running = {
        'version': '%d.%d.%d' % tuple(sys.version_info[:3]),
        'abiflags': getattr(sys, 'abiflags', ''),
        'prefix': os.path.realpath(base_prefix),
    }
    try:
        plan_file = open(plan_path)
        try:
            plans = json.load(plan_file)['plans']
        finally:
            plan_file.close()
    except (IOError, OSError, ValueError, KeyError, TypeError):
        sys.exit('patch-uwsgi: cannot read the link plan %s (%s).\n'
                 'Run `patch_uwsgi apply --python %s` in %s, then build again.'
                 % (plan_path, sys.exc_info()[1], sys.executable, os.getcwd()))
    plan = None
    for candidate in plans:
        if candidate.get('python') == running:
            plan = candidate
    if plan is None:
        made_for = ', '.join(['%s%s at %s' % (p['python']['version'], p['python']['abiflags'], p['python']['prefix'])
                              for p in plans]) or 'no interpreter'
        sys.exit('patch-uwsgi: the link plan %s was made for %s, not for the Python running this build '
                 '(%s%s at %s).\nRe-run `patch_uwsgi apply --python %s` in %s, then build again.'
                 % (plan_path, made_for, running['version'], running['abiflags'], running['prefix'],
                    sys.executable, os.getcwd()))

    mode = plan['mode']
    if mode == 'shared':
        return libs, ldflags, None
    python_dirs = [native(d) for d in plan['python_lib_dirs']]
    if os.environ.get('LD_RUN_PATH') in python_dirs:
        del os.environ['LD_RUN_PATH']
    # A shared plugin (uwsgiconfig.py --plugin/--extra-plugin) cannot hold the non-PIC archive
    # and resolves libpython from the process that loads it.
    shared_object = mode == 'nolib' or bool(set(sys.argv[1:]) & set(['-p', '--plugin', '-x', '--extra-plugin']))
    kept = []
    for flag in ldflags:
        if flag.startswith('-L') and flag[2:] in python_dirs:
            continue
        if flag.startswith('-Wl,-rpath,') and flag[len('-Wl,-rpath,'):] in python_dirs:
            continue
        if flag.startswith('-lpython'):
            continue
        kept.append(flag)
    try:
        from shlex import quote
    except ImportError:  # Python 2
        from pipes import quote
    # uwsgiconfig.py joins LIBS into a shell command line: an archive path with a space or a
    # shell character must arrive as one word. Plain flags come back unchanged.
    if shared_object:
        return [quote(native(x)) for x in plan['nolib_libs']], kept, None
    for flag in plan['ldflags']:
        if native(flag) not in kept:
            kept.append(native(flag))
    # The executable embeds libpython: compile in the finder of a runtime bundle (C source
    # below; rewritten only when it changes, so objects are reused).
    source = os.path.join(os.path.dirname(plan_path), 'patch_uwsgi_runtime.c')
    text = runtime_finder.replace('@PY@', '%d.%d' % sys.version_info[:2])
    try:
        current = open(source).read()
    except (IOError, OSError):
        current = None
    if current != text:
        out = open(source, 'w')
        try:
            out.write(text)
        finally:
            out.close()
        # uWSGI recompiles a source newer than its recorded CFLAGS, which it writes before
        # this file runs: date the source like this file (written by `apply`), so the next
        # build for the same Python reuses the object. A new text comes with a new Python,
        # whose build recompiles everything anyway.
        stamp = os.stat(os.path.join(os.path.dirname(plan_path), 'uwsgiplugin.py')).st_mtime
        os.utime(source, (stamp, stamp))
    return [quote(native(x)) for x in plan['libs']], kept, 'patch_uwsgi_runtime'


_patch_uwsgi_runtime_finder = r'''
/* Written by patch-uwsgi (plugin-link-plan): this uwsgi embeds a static libpython, whose
   extension modules (lib-dynload) come from the CPython build it was linked with. When a
   runtime bundle made for it sits in the site-packages it was installed into
   (<site-packages>/patch_uwsgi_runtime/python@PY@/lib-dynload), put that folder on the Python
   path (as --pythonpath), and when the venv's pyvenv.cfg is too far up for CPython to find
   from this executable (auditwheel moves it to <site-packages>/<dist>.scripts/), name the
   venv's python as the program (as --py-program-name). Both are set as UWSGI_ variables, so
   only uWSGI reads them, and only when the user set neither. Without a bundle: nothing. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int patch_uwsgi_exists(const char *path, int want_dir) {
    struct stat st;
    if (stat(path, &st) != 0) {
        return 0;
    }
    return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

static void patch_uwsgi_find_runtime(void) __attribute__((constructor));

static void patch_uwsgi_find_runtime(void) {
    char dir[PATH_MAX], site[PATH_MAX], dynload[PATH_MAX], up[PATH_MAX], cfg[PATH_MAX];
    char *slash;
    ssize_t length;
    int i;

    length = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (length <= 0) {
        return;
    }
    dir[length] = 0;
    slash = strrchr(dir, '/');
    if (!slash) {
        return;
    }
    *slash = 0;
    /* <dist>.scripts/ and pip --target's bin/: site-packages is the parent; a venv's or a
       prefix's bin/: ../lib/pythonX.Y/site-packages. */
    for (i = 0; i < 2; i++) {
        if (i == 0) {
            snprintf(site, sizeof(site), "%s/..", dir);
        } else {
            snprintf(site, sizeof(site), "%s/../lib/python@PY@/site-packages", dir);
        }
        snprintf(dynload, sizeof(dynload), "%s/patch_uwsgi_runtime/python@PY@/lib-dynload", site);
        if (patch_uwsgi_exists(dynload, 1)) {
            break;
        }
    }
    if (i == 2) {
        return;
    }
    if (!getenv("UWSGI_PYTHONPATH")) {
        setenv("UWSGI_PYTHONPATH", dynload, 1);
    }
    if (getenv("UWSGI_PY_PROGRAM_NAME") || getenv("PYTHONHOME")) {
        return;
    }
    /* CPython looks for pyvenv.cfg beside the program and one level up; look further. */
    snprintf(up, sizeof(up), "%s", dir);
    for (i = 0; i < 5; i++) {
        snprintf(cfg, sizeof(cfg), "%s/pyvenv.cfg", up);
        if (patch_uwsgi_exists(cfg, 0)) {
            if (i >= 2) {
                snprintf(cfg, sizeof(cfg), "%s/bin/python", up);
                setenv("UWSGI_PY_PROGRAM_NAME", cfg, 1);
            }
            return;
        }
        if (strlen(up) + 4 >= sizeof(up)) {
            return;
        }
        strcat(up, "/..");
    }
}
'''
LIBS, LDFLAGS, _patch_uwsgi_runtime = _patch_uwsgi_link_plan(LIBS, LDFLAGS, _patch_uwsgi_runtime_finder)
if _patch_uwsgi_runtime:
    GCC_LIST.append(_patch_uwsgi_runtime)
del _patch_uwsgi_link_plan, _patch_uwsgi_runtime_finder, _patch_uwsgi_runtime
