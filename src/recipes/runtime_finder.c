/* Written by patch-uwsgi (plugin-link-plan): this uwsgi embeds a static libpython, whose
   extension modules (lib-dynload) and standard library belong to the CPython build it was
   linked with. `patch_uwsgi bundle` puts them in the wheel at
   <site-packages>/patch_uwsgi_runtime/python@PY@/. Before main() this finds that folder by
   walking up from where the executable really is (a venv's bin/, auditwheel's
   <dist>.scripts/, package data at any depth, pip --target or --user, a system prefix, an
   unpacked wheel) and tells uWSGI, through its UWSGI_ environment forms of --pythonpath and
   --home (read by uWSGI only, and overridden by the same options given on the command line or
   in a config file):
   - lib-dynload goes on the Python path (first, so bundled modules win);
   - with the whole standard library bundled (@ZIP@), the folder is the Python home
     (self-contained: no Python needed; a .pth file in it adds the site-packages it sits in);
   - otherwise, when CPython would not find a standard library from here by itself: the venv
     that owns that site-packages, else the prefix of the first python@PY@ on PATH.
   Without a bundle above it: nothing. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* `patch_uwsgi bundle --stdlib` looks for this mark: older finders know no bundled stdlib. */
const char patch_uwsgi_runtime_finder_version[] __attribute__((used)) = "patch-uwsgi runtime finder 3";

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

/* `out` = a b c; 0 when that does not fit in PATH_MAX (the path is then not used). */
static int patch_uwsgi_join(char *out, const char *a, const char *b, const char *c) {
    int length = snprintf(out, PATH_MAX, "%s%s%s", a, b, c);
    return length > 0 && length < PATH_MAX;
}

/* Cut the last component of an absolute path in place ("" stands for "/"); 0 at the root. */
static int patch_uwsgi_parent(char *path) {
    char *slash = strrchr(path, '/');
    if (!slash) {
        return 0;
    }
    *slash = 0;
    return 1;
}

/* `prefix` (PATH_MAX) = the prefix of the first python@PY@ on PATH that has a standard
   library. */
static int patch_uwsgi_path_prefix(char *prefix) {
    const char *path = getenv("PATH");
    char candidate[PATH_MAX], real[PATH_MAX], landmark[PATH_MAX];
    const char *start, *end;
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
        /* <prefix>/bin/python@PY@ */
        if (!realpath(candidate, real) || !patch_uwsgi_parent(real) || !patch_uwsgi_parent(real)) {
            continue;
        }
        if (patch_uwsgi_join(landmark, real, "/lib/python@PY@/os.py", "") &&
            patch_uwsgi_exists(landmark, 0)) {
            snprintf(prefix, PATH_MAX, "%s", real[0] ? real : "/");
            return 1;
        }
    }
    return 0;
}

/* Where an environment keeps the site-packages this minor installs into: a venv, a prefix,
   pip --user's ~/.local, Debian's /usr/local (dist-packages), Fedora's platlib (lib64). */
static const char *const patch_uwsgi_sites[] = {
    "/lib/python@PY@/site-packages", "/lib64/python@PY@/site-packages",
    "/lib/python@PY@/dist-packages", "/lib64/python@PY@/dist-packages"};
#define PATCH_UWSGI_SITES (sizeof(patch_uwsgi_sites) / sizeof(patch_uwsgi_sites[0]))

/* Whether `site` is <env>/<one of patch_uwsgi_sites>; then `env` holds <env>. */
static int patch_uwsgi_env_of(const char *site, char *env) {
    size_t i, length = strlen(site), tail;
    for (i = 0; i < PATCH_UWSGI_SITES; i++) {
        tail = strlen(patch_uwsgi_sites[i]);
        if (length > tail && strcmp(site + length - tail, patch_uwsgi_sites[i]) == 0) {
            snprintf(env, PATH_MAX, "%.*s", (int)(length - tail), site);
            return 1;
        }
    }
    return 0;
}

/* Whether CPython started as a program in `dir` finds its home by itself: a pyvenv.cfg beside
   the program or one level up (a venv's bin/), or a prefix's bin/ (../lib/python@PY@/os.py). */
static int patch_uwsgi_python_finds_home(const char *dir) {
    char landmark[PATH_MAX];
    return (patch_uwsgi_join(landmark, dir, "/pyvenv.cfg", "") && patch_uwsgi_exists(landmark, 0)) ||
           (patch_uwsgi_join(landmark, dir, "/../pyvenv.cfg", "") && patch_uwsgi_exists(landmark, 0)) ||
           (patch_uwsgi_join(landmark, dir, "/../lib/python@PY@/os.py", "") &&
            patch_uwsgi_exists(landmark, 0));
}

static void patch_uwsgi_find_runtime(void) __attribute__((constructor));

static void patch_uwsgi_find_runtime(void) {
    char dir[PATH_MAX], up[PATH_MAX], site[PATH_MAX], runtime[PATH_MAX], found[PATH_MAX];
    char env[PATH_MAX];
    ssize_t length;
    size_t i;
    int depth, located = 0;

    length = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (length <= 0) {
        return;
    }
    dir[length] = 0;
    if (!patch_uwsgi_parent(dir)) {
        return;
    }
    /* The nearest folder at or above the executable's that holds the bundle, directly (the
       site-packages the executable was installed into, a --target folder, an unpacked wheel)
       or in an environment's site-packages (the executable in its bin/). */
    snprintf(up, sizeof(up), "%s", dir);
    for (depth = 0; depth < 64 && !located; depth++) {
        for (i = 0; i <= PATCH_UWSGI_SITES && !located; i++) {
            if (!patch_uwsgi_join(site, up, i == 0 ? "" : patch_uwsgi_sites[i - 1], "") ||
                !patch_uwsgi_join(runtime, site, "/patch_uwsgi_runtime/python@PY@", "") ||
                !patch_uwsgi_join(found, runtime, "/lib-dynload", "")) {
                continue;
            }
            located = patch_uwsgi_exists(found, 1);
        }
        if (!located && !patch_uwsgi_parent(up)) {
            break;
        }
    }
    if (!located) {
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
    if (patch_uwsgi_join(found, runtime, "/@ZIP@", "") && patch_uwsgi_exists(found, 0)) {
        if (realpath(runtime, up)) {
            setenv("UWSGI_HOME", up, 1);
        }
        return;
    }
    if (patch_uwsgi_python_finds_home(dir)) {
        return;
    }
    /* The environment that owns the site-packages: a venv (uWSGI sees its pyvenv.cfg and runs
       <venv>/bin/python's startup: the venv is sys.prefix, its site-packages importable), or a
       prefix with a standard library (the executable is package data in its site-packages). */
    if (patch_uwsgi_env_of(site, env) &&
        ((patch_uwsgi_join(found, env, "/pyvenv.cfg", "") && patch_uwsgi_exists(found, 0)) ||
         (patch_uwsgi_join(found, env, "/lib/python@PY@/os.py", "") &&
          patch_uwsgi_exists(found, 0)))) {
        if (realpath(env, up)) {
            setenv("UWSGI_HOME", up, 1);
        }
        return;
    }
    /* No venv (pip --user, --target, a prefix without a standard library such as /usr/local):
       the system's python@PY@, whose site module adds the user's and the system's
       site-packages as for any program of it. */
    if (patch_uwsgi_path_prefix(up)) {
        setenv("UWSGI_HOME", up, 1);
    }
}
