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
    text = runtime_finder.replace('@PY@', '%d.%d' % sys.version_info[:2]).replace(
        '@ZIP@', '%s/python%d%d.zip' % ((getattr(sys, 'platlibdir', 'lib'),) + tuple(sys.version_info[:2])))
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
   extension modules (lib-dynload) and standard library belong to the CPython build it was
   linked with. `patch_uwsgi bundle` puts them in the wheel at
   <site-packages>/patch_uwsgi_runtime/python@PY@/. Before main() this finds that folder from
   where the executable is installed and tells uWSGI, through its UWSGI_ environment forms of
   --pythonpath and --home (read by uWSGI only, and overridden by the same options given on the
   command line or in a config file):
   - lib-dynload goes on the Python path (first, so bundled modules win);
   - with the whole standard library bundled (@ZIP@), the folder is the Python home
     (self-contained: no Python needed; a .pth file in it adds the site-packages it sits in);
   - otherwise, when CPython would not find a standard library from here by itself: the venv
     whose pyvenv.cfg is above (auditwheel moves the executable to <site-packages>/<dist>.scripts/,
     too far for CPython's own search), else the prefix of the first python@PY@ on PATH.
   Without a bundle beside it: nothing. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* `patch_uwsgi bundle --stdlib` looks for this mark: older finders know no bundled stdlib. */
const char patch_uwsgi_runtime_finder_version[] __attribute__((used)) = "patch-uwsgi runtime finder 2";

static int patch_uwsgi_exists(const char *path, int want_dir) {
    struct stat st;
    if (stat(path, &st) != 0) {
        return 0;
    }
    return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

/* uWSGI reads one value per variable; --pythonpath has three spellings. */
static void patch_uwsgi_add_pythonpath(const char *dir) {
    static const char *names[] = {"UWSGI_PYTHONPATH", "UWSGI_PYTHON_PATH", "UWSGI_PP"};
    const char *value;
    int i;
    for (i = 0; i < 3; i++) {
        value = getenv(names[i]);
        if (value && strcmp(value, dir) == 0) {
            return;
        }
    }
    for (i = 0; i < 3; i++) {
        if (!getenv(names[i])) {
            setenv(names[i], dir, 1);
            return;
        }
    }
}

static int patch_uwsgi_home_chosen(void) {
    static const char *names[] = {"UWSGI_HOME", "UWSGI_VIRTUALENV", "UWSGI_VENV", "UWSGI_PYHOME",
                                  "UWSGI_PY_PROGRAM_NAME", "UWSGI_PY_PROGRAMNAME", "PYTHONHOME"};
    int i;
    for (i = 0; i < 7; i++) {
        if (getenv(names[i])) {
            return 1;
        }
    }
    return 0;
}

/* The prefix of the first python@PY@ on PATH that has a standard library. */
static int patch_uwsgi_path_prefix(char *prefix, size_t size) {
    const char *path = getenv("PATH");
    char candidate[PATH_MAX], real[PATH_MAX], landmark[PATH_MAX];
    const char *start, *end;
    char *slash;
    int i;
    size_t length;
    if (!path) {
        return 0;
    }
    for (start = path; *start; start = *end ? end + 1 : end) {
        end = strchr(start, ':');
        if (!end) {
            end = start + strlen(start);
        }
        length = (size_t)(end - start);
        if (length == 0 || length + 16 >= sizeof(candidate)) {
            continue;
        }
        snprintf(candidate, sizeof(candidate), "%.*s/python@PY@", (int)length, start);
        if (!realpath(candidate, real)) {
            continue;
        }
        for (i = 0; i < 2; i++) {
            slash = strrchr(real, '/');
            if (!slash) {
                break;
            }
            *slash = 0;
        }
        if (i < 2) {
            continue;
        }
        snprintf(landmark, sizeof(landmark), "%s/lib/python@PY@/os.py", real[0] ? real : "");
        if (patch_uwsgi_exists(landmark, 0) && strlen(real) < size) {
            snprintf(prefix, size, "%s", real[0] ? real : "/");
            return 1;
        }
    }
    return 0;
}

static void patch_uwsgi_find_runtime(void) __attribute__((constructor));

static void patch_uwsgi_find_runtime(void) {
    char dir[PATH_MAX], site[PATH_MAX], runtime[PATH_MAX], found[PATH_MAX], up[PATH_MAX];
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
    /* <dist>.scripts/ and pip --target's bin/: site-packages is the parent; an unpacked
       wheel's <dist>.data/scripts/: two up; a venv's or a prefix's bin/:
       ../lib/pythonX.Y/site-packages. */
    for (i = 0; i < 3; i++) {
        if (i == 0) {
            snprintf(site, sizeof(site), "%s/..", dir);
        } else if (i == 1) {
            snprintf(site, sizeof(site), "%s/../..", dir);
        } else {
            snprintf(site, sizeof(site), "%s/../lib/python@PY@/site-packages", dir);
        }
        snprintf(runtime, sizeof(runtime), "%s/patch_uwsgi_runtime/python@PY@", site);
        snprintf(found, sizeof(found), "%s/lib-dynload", runtime);
        if (patch_uwsgi_exists(found, 1)) {
            break;
        }
    }
    if (i == 3) {
        return;
    }
    /* Absolute, clean paths: they end up in sys.path and in module __file__ values. */
    if (!realpath(found, up)) {
        return;
    }
    patch_uwsgi_add_pythonpath(up);
    if (patch_uwsgi_home_chosen()) {
        return;
    }
    snprintf(found, sizeof(found), "%s/@ZIP@", runtime);
    if (patch_uwsgi_exists(found, 0)) {
        if (realpath(runtime, up)) {
            setenv("UWSGI_HOME", up, 1);
        }
        return;
    }
    /* CPython looks for pyvenv.cfg beside the program and one level up; look further. */
    snprintf(up, sizeof(up), "%s", dir);
    for (i = 0; i < 5; i++) {
        snprintf(found, sizeof(found), "%s/pyvenv.cfg", up);
        if (patch_uwsgi_exists(found, 0)) {
            /* uWSGI sees pyvenv.cfg in the home and runs <home>/bin/python's startup. */
            if (i >= 2 && realpath(up, found)) {
                setenv("UWSGI_HOME", found, 1);
            }
            return;
        }
        if (strlen(up) + 4 >= sizeof(up)) {
            return;
        }
        strcat(up, "/..");
    }
    /* No venv: a prefix CPython finds from the executable, or the system's python@PY@. */
    snprintf(found, sizeof(found), "%s/../lib/python@PY@/os.py", dir);
    if (patch_uwsgi_exists(found, 0)) {
        return;
    }
    if (patch_uwsgi_path_prefix(up, sizeof(up))) {
        setenv("UWSGI_HOME", up, 1);
    }
}
'''
LIBS, LDFLAGS, _patch_uwsgi_runtime = _patch_uwsgi_link_plan(LIBS, LDFLAGS, _patch_uwsgi_runtime_finder)
if _patch_uwsgi_runtime:
    GCC_LIST.append(_patch_uwsgi_runtime)
del _patch_uwsgi_link_plan, _patch_uwsgi_runtime_finder, _patch_uwsgi_runtime
