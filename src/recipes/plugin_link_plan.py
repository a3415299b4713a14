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
@RUNTIME_FINDER_C@'''
LIBS, LDFLAGS, _patch_uwsgi_runtime = _patch_uwsgi_link_plan(LIBS, LDFLAGS, _patch_uwsgi_runtime_finder)
if _patch_uwsgi_runtime:
    GCC_LIST.append(_patch_uwsgi_runtime)
del _patch_uwsgi_link_plan, _patch_uwsgi_runtime_finder, _patch_uwsgi_runtime
