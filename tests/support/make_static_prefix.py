"""Make a static-only copy of the running CPython, as manylinux ships them.

usage: python make_static_prefix.py ROOT NAME

Creates ROOT/NAME/ with a copy of the interpreter executable, `include` linked to the
original, and lib/pythonX.Y/ whose entries link to the original stdlib except the config
folder (left empty) and _sysconfigdata (a rewritten copy: Py_ENABLE_SHARED = 0, paths into the
new prefix, LDLIBRARY = LIBRARY, no -L/-rpath in LIBS). CPython finds its prefix from the
executable's location, so the copy reports the new prefix and the rewritten sysconfig.
Prints the new executable's path. Runs on Python 2.7 and 3.6+.
"""
import os
import pprint
import shutil
import sys

root, name = sys.argv[1], sys.argv[2]
old_prefix = os.path.realpath(sys.prefix)
new_prefix = os.path.join(os.path.realpath(root), name)
short = '%d.%d' % sys.version_info[:2]
stdlib = 'python' + short
old_lib = os.path.join(old_prefix, 'lib', stdlib)
new_lib = os.path.join(new_prefix, 'lib', stdlib)
os.makedirs(new_lib)
os.makedirs(os.path.join(new_prefix, 'bin'))
os.symlink(os.path.join(old_prefix, 'include'), os.path.join(new_prefix, 'include'))
executable = os.path.join(new_prefix, 'bin', stdlib)
shutil.copy2(os.path.realpath(sys.executable), executable)
for alias in ('python', 'python%d' % sys.version_info[0]):
    os.symlink(stdlib, os.path.join(new_prefix, 'bin', alias))

for entry in sorted(os.listdir(old_lib)):
    source = os.path.join(old_lib, entry)
    if entry.startswith('config') and os.path.isdir(source):
        os.mkdir(os.path.join(new_lib, entry))
    elif entry == '__pycache__':
        # A real folder: byte code of the rewritten module must not land in the original's.
        os.mkdir(os.path.join(new_lib, entry))
    elif entry.startswith('_sysconfigdata'):
        if not entry.endswith('.py'):
            continue
        namespace = {}
        exec(open(source).read(), namespace)
        variables = dict(namespace['build_time_vars'])
        for key, value in list(variables.items()):
            if isinstance(value, str):
                variables[key] = value.replace(old_prefix, new_prefix)
        variables['Py_ENABLE_SHARED'] = 0
        variables['LDLIBRARY'] = variables['LIBRARY']
        variables['BLDLIBRARY'] = variables['LIBRARY']
        variables['LIBS'] = ' '.join(t for t in variables['LIBS'].split()
                                     if not t.startswith('-L') and not t.startswith('-Wl,-rpath'))
        out = open(os.path.join(new_lib, entry), 'w')
        out.write('# rewritten by patch-uwsgi tests: a static-only interpreter\n')
        out.write('build_time_vars = ' + pprint.pformat(variables) + '\n')
        out.close()
    else:
        os.symlink(source, os.path.join(new_lib, entry))
sys.stdout.write(executable + '\n')
