# patch-uwsgi bundle --stdlib: run by the build interpreter, the one thing of a bundle only it can
# do: compile its standard library. Writes the zip CPython puts first on its path
# (<home>/<platlibdir>/pythonXY.zip): every .py of the standard library as a sourceless .pyc,
# other files as they are, stored (the wheel compresses it), in name order with fixed dates.
# usage: python -S -c SCRIPT OUTFILE   prints the number of modules; exit 2 with a message.
# Run with PYTHONHASHSEED=0: set constants are marshalled in hash order.
import marshal
import os
import sys
import zipfile

# Not needed to serve an application, or not usable from a zip: tests, IDLE and Tk, the
# bundled pip of ensurepip, demos.
STDLIB_SKIPPED = set(['test', 'tests', 'idle_test', 'idlelib', 'tkinter', 'turtledemo',
                      'ensurepip', 'site-packages', 'lib-dynload', '__pycache__', 'dist-packages'])


class Refused(Exception):
    pass


def stdlib_folder():
    import sysconfig
    folder = sysconfig.get_paths()['stdlib']
    if not os.path.isfile(os.path.join(folder, 'os.py')):
        raise Refused('%s: no standard library at %s (os.py missing)' % (sys.executable, folder))
    return folder


def pyc(code):
    # A sourceless .pyc (no source beside it in the zip, so no date to compare): the header is
    # the magic number, then zeros for the flags, date and size this version has.
    data = marshal.dumps(code)
    if sys.version_info[0] < 3:
        import imp
        return imp.get_magic() + b'\0' * 4 + data
    import importlib.util
    zeros = 12 if sys.version_info >= (3, 7) else 8
    return importlib.util.MAGIC_NUMBER + b'\0' * zeros + data


def main(out):
    folder = stdlib_folder()
    entries = []
    # followlinks: a stdlib may be assembled from links (distributions, test prefixes).
    for top, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in STDLIB_SKIPPED and not d.startswith('config-'))
        for name in files:
            path = os.path.join(top, name)
            relative = os.path.relpath(path, folder).replace(os.sep, '/')
            if name.endswith(('.pyc', '.pyo', '.exe')):
                continue
            with open(path, 'rb') as handle:
                data = handle.read()
            if name.endswith('.py'):
                try:
                    code = compile(data, relative, 'exec', 0, True)
                except SyntaxError:
                    continue  # data files named .py (lib2to3 fixtures and the like)
                entries.append((relative + 'c', pyc(code)))
            else:
                entries.append((relative, data))
    entries.sort()
    try:
        with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as archive:
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
    except (IOError, OSError) as problem:
        raise Refused('%s: cannot write the standard library zip: %s' % (out, problem))
    sys.stdout.write('%d\n' % len([n for n, _ in entries if n.endswith('.pyc')]))


try:
    main(sys.argv[1])
except Refused as refused:
    sys.stderr.write('%s\n' % refused)
    sys.exit(2)
