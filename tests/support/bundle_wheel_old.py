# Kept for tests/bundle_same.rs only: src/runtime/bundle_wheel.py as it was at 0c54b28, before
# `bundle` did the wheel work in Rust. The test runs it as `bundle` ran it and compares the
# wheels member by member. Not used by patch-uwsgi itself.
# patch-uwsgi bundle: run by the build interpreter. Adds to each wheel the extension modules
# (lib-dynload) of this interpreter that its static uwsgi executable needs at run time, as
# <root>/patch_uwsgi_runtime/pythonX.Y/lib-dynload/, where the runtime finder compiled into the
# executable looks. Every other member keeps its bytes; RECORD is rewritten; bundling twice
# gives the same wheel as bundling once. All wheels are written, or none.
# The modules are every lib-dynload/*.so of this interpreter: none of them is compiled into its
# static archive (those are in sys.builtin_module_names and have no .so).
# With --stdlib, the standard library too, compiled, as the zip CPython puts first on its path
# (<home>/<platlibdir>/pythonXY.zip); the finder then makes the runtime folder the Python home.
# --exclude NAME,... leaves those extension modules out and lists them in
# <runtime>/excluded.txt, where `verify --wheel` reads what not to expect.
# usage: python -S -c SCRIPT [--stdlib] [--exclude NAMES] OUTDIR WHEEL...   prints one JSON
# object; exit 2 with a message. Run with PYTHONHASHSEED=0: set constants are marshalled in
# hash order.
import base64
import hashlib
import io
import json
import marshal
import os
import re
import sys
import tempfile
import zipfile
import zlib

# The finder's path names the minor it was compiled for; its version mark says what it can do
# (none: the first finder; 2: knows a bundled stdlib; 3: walks up from any install location).
FINDER_MARK = re.compile(br'patch_uwsgi_runtime/python(\d+\.\d+)')
FINDER_VERSION = re.compile(br'patch-uwsgi runtime finder (\d+)')
RUNTIME = 'patch_uwsgi_runtime/python%d.%d/' % sys.version_info[:2]
EXCLUDED = RUNTIME + 'excluded.txt'
STDLIB_ZIP = RUNTIME + '%s/python%d%d.zip' % ((getattr(sys, 'platlibdir', 'lib'),)
                                             + tuple(sys.version_info[:2]))
# Python's site module reads .pth files in <home>/lib/pythonX.Y/site-packages at start-up: this
# one appends the site-packages the runtime folder was installed into (<site>/
# patch_uwsgi_runtime/pythonX.Y = sys.prefix), after the bundled stdlib and with its own .pth
# files run, as a site-packages is in any Python.
SITE_PTH = RUNTIME + 'lib/python%d.%d/site-packages/patch_uwsgi_site.pth' % sys.version_info[:2]
SITE_PTH_TEXT = (b'import os, site, sys; '
                 b'os.path.basename(os.path.dirname(sys.prefix)) == "patch_uwsgi_runtime" '
                 b'and site.addsitedir(os.path.dirname(os.path.dirname(sys.prefix)))\n')
# Not needed to serve an application, or not usable from a zip: tests, IDLE and Tk, the
# bundled pip of ensurepip, demos.
STDLIB_SKIPPED = set(['test', 'tests', 'idle_test', 'idlelib', 'tkinter', 'turtledemo',
                      'ensurepip', 'site-packages', 'lib-dynload', '__pycache__', 'dist-packages'])


class Refused(Exception):
    pass


def record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=')
    return 'sha256=' + digest.decode('ascii')


def lib_dynload():
    for folder in sys.path:
        if os.path.basename(folder.rstrip('/')) == 'lib-dynload' and os.path.isdir(folder):
            return folder
    raise Refused('%s has no lib-dynload folder on sys.path' % sys.executable)


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


def stdlib_zip():
    """(zip bytes, module count): every .py of the standard library as .pyc, other files as
    they are, stored (the wheel compresses it), in name order with fixed dates."""
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
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue(), len([n for n, _ in entries if n.endswith('.pyc')])


def plan(wheel, stdlib):
    name = os.path.basename(wheel)
    match = re.match(r'^(.+?)-([^-]+)(?:-\d[^-]*)?-([^-]+)-([^-]+)-([^-]+)\.whl$', name)
    if not match:
        raise Refused('%s: not a wheel file name (NAME-VERSION-PYTHON-ABI-PLATFORM.whl)' % wheel)
    want = 'cp%d%d' % sys.version_info[:2]
    if want not in match.group(3).split('.'):
        raise Refused('%s is tagged %s, but the Python given is %d.%d.%d (%s): pass --python with '
                      'the interpreter that built it' % (wheel, match.group(3),
                                                         sys.version_info[0], sys.version_info[1],
                                                         sys.version_info[2], want))
    try:
        archive = zipfile.ZipFile(wheel)
        members = archive.infolist()
        bad = archive.testzip()
    except (zipfile.BadZipfile, zlib.error, EOFError, IOError, OSError) as problem:
        raise Refused('%s: not a readable wheel (zip): %s' % (wheel, problem))
    if bad is not None:
        raise Refused('%s: corrupt member %s' % (wheel, bad))
    records = [m.filename for m in members if m.filename.endswith('.dist-info/RECORD')]
    if len(records) != 1:
        raise Refused('%s: expected one .dist-info/RECORD, found %d' % (wheel, len(records)))
    embedding = []  # {'path', 'python'} of each executable with the finder
    old = []  # embedding, with a finder that predates a bundled stdlib
    fixed_places = []  # embedding, with a finder that looks only in fixed places
    shared = []
    looked_at = []  # every ELF file, for the refusal
    this_python = '%d.%d' % sys.version_info[:2]
    for member in members:
        if member.filename.endswith('/'):
            continue
        if member.filename.startswith('patch_uwsgi_runtime/'):
            continue  # an earlier bundle's modules
        handle = archive.open(member)
        try:
            if handle.read(4) != b'\x7fELF':
                continue
        finally:
            handle.close()
        looked_at.append(member.filename)
        top = member.filename.split('/')[0]
        if top.endswith('.scripts'):
            # auditwheel's layout: grafting already happened, without the modules' libraries.
            raise Refused('%s was already repaired by auditwheel (%s): bundle the wheel as built, '
                          'before `auditwheel repair`, so that auditwheel also grafts the '
                          'libraries the bundled modules need' % (wheel, member.filename))
        data = archive.read(member)
        finder = FINDER_MARK.search(data)
        if finder:
            python = finder.group(1).decode('ascii')
            if python != this_python:
                raise Refused('%s: %s embeds Python %s, but the Python given is %s: pass --python '
                              'with the interpreter that built it'
                              % (wheel, member.filename, python, this_python))
            embedding.append({'path': member.filename, 'python': python})
            version = FINDER_VERSION.search(data)
            version = int(version.group(1)) if version else 1
            if version < 2:
                old.append(member.filename)
            if version < 3 and '.data/scripts/' not in member.filename:
                fixed_places.append(member.filename)
        elif re.search(br'libpython\d\.\d+[a-z]*\.so', data):
            shared.append(member.filename)
    if fixed_places:
        raise Refused('%s: %s was built with an older patch-uwsgi whose runtime finder only looks '
                      'for the bundle from <dist>.data/scripts/, not from where this wheel installs '
                      'it: apply this version, rebuild, then bundle' % (wheel, ', '.join(fixed_places)))
    if stdlib and old:
        raise Refused('%s: %s was built with an older patch-uwsgi whose runtime finder does '
                      'not know a bundled standard library: apply this version, rebuild, '
                      'then bundle with --stdlib' % (wheel, ', '.join(old)))
    if not embedding:
        if shared:
            raise Refused('%s: %s links a shared libpython; bundle is for an executable that '
                          'embeds a static one (built after `patch_uwsgi apply` in static mode)'
                          % (wheel, ', '.join(shared)))
        raise Refused('%s: no executable in it embeds a static libpython with patch-uwsgi\'s '
                      'runtime finder (ELF files looked at: %s): build uWSGI after '
                      '`patch_uwsgi apply` (static mode)'
                      % (wheel, ', '.join(looked_at) or 'none, in %d members' % len(members)))
    return archive, members, records[0], embedding


def module_name(entry):
    # math.cpython-311-x86_64-linux-gnu.so, _ssl.so, mod.abi3.so: the name is before the dot.
    return entry.split('.')[0]


def check_excluded(excluded):
    available = set(module_name(e) for e in os.listdir(lib_dynload()) if e.endswith('.so'))
    unknown = sorted(set(excluded) - available)
    if unknown:
        raise Refused('--exclude %s: not an extension module of %s (its lib-dynload has: %s)'
                      % (','.join(unknown), sys.executable, ' '.join(sorted(available))))


def bundled(archive, members, record, stdlib, excluded):
    """The new wheel's members: (ZipInfo, bytes) in order, RECORD last."""
    kept = [m for m in members
            if not m.filename.startswith('patch_uwsgi_runtime/') and m.filename != record]
    out = [(m, archive.read(m)) for m in kept]
    folder = lib_dynload()
    for entry in sorted(os.listdir(folder)):
        if not entry.endswith('.so') or module_name(entry) in excluded:
            continue
        with open(os.path.join(folder, entry), 'rb') as handle:
            data = handle.read()
        info = zipfile.ZipInfo(RUNTIME + 'lib-dynload/' + entry, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o755 << 16
        out.append((info, data))
    if stdlib is not None:
        info = zipfile.ZipInfo(STDLIB_ZIP, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        out.append((info, stdlib[0]))
        info = zipfile.ZipInfo(SITE_PTH, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        out.append((info, SITE_PTH_TEXT))
    if excluded:
        info = zipfile.ZipInfo(EXCLUDED, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        out.append((info, ''.join(name + '\n' for name in sorted(excluded)).encode('ascii')))
    lines = []
    for info, data in out:
        lines.append('%s,%s,%d' % (info.filename, record_hash(data), len(data)))
    lines.append('%s,,' % record)
    record_info = next(m for m in members if m.filename == record)
    out.append((record_info, ('\n'.join(lines) + '\n').encode('utf-8')))
    return out


def stage(out_dir):
    """A new empty temporary wheel file in `out_dir` (so that the rename is atomic)."""
    try:
        handle, temp = tempfile.mkstemp(prefix='.patch-uwsgi-', suffix='.whl', dir=out_dir)
    except (IOError, OSError) as problem:
        raise Refused('%s: cannot write a wheel there: %s' % (out_dir, problem))
    os.close(handle)
    return temp


def replace_all(out_dir, staged):
    """Rename every staged wheel to its target, or none: a wheel a rename replaced is kept
    (hard link, else copy) until all are in place, and put back if one rename fails."""
    done = []  # (target, the previous wheel's keeper or None)
    try:
        for temp, target in staged:
            keeper = None
            if os.path.isfile(target):
                keeper = stage(out_dir)
                os.unlink(keeper)
                try:
                    os.link(target, keeper)
                except OSError:
                    import shutil
                    shutil.copy2(target, keeper)
            try:
                os.rename(temp, target)
            except OSError as problem:
                if keeper:
                    os.unlink(keeper)
                raise Refused('%s: cannot write the wheel: %s' % (target, problem))
            done.append((target, keeper))
    except BaseException:
        for target, keeper in reversed(done):
            if keeper:
                os.rename(keeper, target)
            else:
                os.unlink(target)
        raise
    for _, keeper in done:
        if keeper:
            os.unlink(keeper)


def remove_folders(created):
    """Remove the folders this run made (deepest first), if they are empty."""
    for folder in created:
        try:
            os.rmdir(folder)
        except OSError:
            pass


def main():
    arguments = sys.argv[1:]
    with_stdlib = False
    excluded = set()
    while arguments and arguments[0].startswith('--'):
        option = arguments.pop(0)
        if option == '--stdlib':
            with_stdlib = True
        elif option == '--exclude':
            excluded.update(name for name in arguments.pop(0).split(',') if name)
    out_dir, wheels = arguments[0], arguments[1:]
    check_excluded(excluded)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise Refused('%s: the output folder is a file' % out_dir)
    planned = [plan(wheel, with_stdlib) for wheel in wheels]
    stdlib = stdlib_zip() if with_stdlib else None
    # A missing output folder is made, as `pip wheel -w` and `auditwheel repair -w` do, once
    # every wheel is known to be good; it goes again if the bundle fails.
    created = []
    folder = os.path.abspath(out_dir)
    while not os.path.isdir(folder):
        created.append(folder)
        folder = os.path.dirname(folder)
    for folder in reversed(created):
        try:
            os.mkdir(folder)
        except OSError as problem:
            remove_folders(created)
            raise Refused('%s: cannot make the output folder: %s' % (out_dir, problem))
    umask = os.umask(0)
    os.umask(umask)
    staged = []
    report = []
    try:
        for wheel, (archive, members, record, embedding) in zip(wheels, planned):
            target = os.path.join(out_dir, os.path.basename(wheel))
            staged.append((stage(out_dir), target))
            temp = staged[-1][0]
            # mkstemp makes the file private; a wheel gets the mode any new file would.
            os.chmod(temp, 0o666 & ~umask)
            entries = bundled(archive, members, record, stdlib, excluded)
            with zipfile.ZipFile(temp, 'w') as new:
                for info, data in entries:
                    new.writestr(info, data)
            added = [i.filename for i, _ in entries if i.filename.startswith(RUNTIME + 'lib-dynload/')]
            report.append({'wheel': wheel, 'output': target, 'executables': embedding,
                           'modules': len(added),
                           'stdlib_modules': stdlib[1] if stdlib else 0,
                           'bytes_before': os.path.getsize(wheel),
                           'bytes_after': os.path.getsize(temp)})
        replace_all(out_dir, staged)
    except BaseException:
        for temp, _ in staged:
            if os.path.exists(temp):
                os.unlink(temp)
        remove_folders(created)
        raise
    sys.stdout.write(json.dumps({'runtime': RUNTIME, 'excluded': sorted(excluded),
                                 'wheels': report}))


try:
    main()
except Refused as refused:
    sys.stderr.write('%s\n' % refused)
    sys.exit(2)
