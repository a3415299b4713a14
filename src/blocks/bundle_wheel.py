# patch-uwsgi bundle: run by the build interpreter. Adds to each wheel the extension modules
# (lib-dynload) of this interpreter that its static uwsgi executable needs at run time, as
# <root>/patch_uwsgi_runtime/pythonX.Y/lib-dynload/, where the runtime finder compiled into the
# executable looks. Every other member keeps its bytes; RECORD is rewritten; bundling twice
# gives the same wheel as bundling once. All wheels are written, or none.
# The modules are every lib-dynload/*.so of this interpreter: none of them is compiled into its
# static archive (those are in sys.builtin_module_names and have no .so).
# usage: python -S -c SCRIPT OUTDIR WHEEL...   prints one JSON object; exit 2 with a message.
import base64
import hashlib
import json
import os
import re
import sys
import tempfile
import zipfile

FINDER_MARK = b'patch_uwsgi_runtime/python'
RUNTIME = 'patch_uwsgi_runtime/python%d.%d/' % sys.version_info[:2]


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


def plan(wheel):
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
    except (zipfile.BadZipfile, IOError, OSError) as problem:
        raise Refused('%s: not a readable wheel (zip): %s' % (wheel, problem))
    if bad is not None:
        raise Refused('%s: corrupt member %s' % (wheel, bad))
    records = [m.filename for m in members if m.filename.endswith('.dist-info/RECORD')]
    if len(records) != 1:
        raise Refused('%s: expected one .dist-info/RECORD, found %d' % (wheel, len(records)))
    embedding = []
    shared = []
    for member in members:
        if '.data/scripts/' not in member.filename:
            continue
        data = archive.read(member)
        if not data.startswith(b'\x7fELF'):
            continue
        if FINDER_MARK in data:
            embedding.append(member.filename)
        elif re.search(br'libpython\d\.\d+[a-z]*\.so', data):
            shared.append(member.filename)
    if not embedding:
        if shared:
            raise Refused('%s: %s links a shared libpython; bundle is for an executable that '
                          'embeds a static one (built after `patch_uwsgi apply` in static mode)'
                          % (wheel, ', '.join(shared)))
        raise Refused('%s: no executable in it embeds a static libpython with patch-uwsgi\'s '
                      'runtime finder: build uWSGI after `patch_uwsgi apply` (static mode)' % wheel)
    return archive, members, records[0], embedding


def bundled(archive, members, record):
    """The new wheel's members: (ZipInfo, bytes) in order, RECORD last."""
    kept = [m for m in members
            if not m.filename.startswith('patch_uwsgi_runtime/') and m.filename != record]
    out = [(m, archive.read(m)) for m in kept]
    folder = lib_dynload()
    for entry in sorted(os.listdir(folder)):
        if not entry.endswith('.so'):
            continue
        with open(os.path.join(folder, entry), 'rb') as handle:
            data = handle.read()
        info = zipfile.ZipInfo(RUNTIME + 'lib-dynload/' + entry, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o755 << 16
        out.append((info, data))
    lines = []
    for info, data in out:
        lines.append('%s,%s,%d' % (info.filename, record_hash(data), len(data)))
    lines.append('%s,,' % record)
    record_info = next(m for m in members if m.filename == record)
    out.append((record_info, ('\n'.join(lines) + '\n').encode('utf-8')))
    return out


def main():
    out_dir, wheels = sys.argv[1], sys.argv[2:]
    if not os.path.isdir(out_dir):
        raise Refused('%s: the output folder does not exist' % out_dir)
    staged = []
    report = []
    try:
        for wheel in wheels:
            archive, members, record, embedding = plan(wheel)
            target = os.path.join(out_dir, os.path.basename(wheel))
            try:
                handle, temp = tempfile.mkstemp(prefix='.patch-uwsgi-', suffix='.whl', dir=out_dir)
            except (IOError, OSError) as problem:
                raise Refused('%s: cannot write a wheel there: %s' % (out_dir, problem))
            os.close(handle)
            staged.append((temp, target))
            entries = bundled(archive, members, record)
            with zipfile.ZipFile(temp, 'w') as new:
                for info, data in entries:
                    new.writestr(info, data)
            added = [i.filename for i, _ in entries if i.filename.startswith(RUNTIME)]
            report.append({'wheel': wheel, 'output': target, 'executables': embedding,
                           'modules': len(added), 'bytes_before': os.path.getsize(wheel),
                           'bytes_after': os.path.getsize(temp)})
        for temp, target in staged:
            os.rename(temp, target)
    except BaseException:
        for temp, _ in staged:
            if os.path.exists(temp):
                os.unlink(temp)
        raise
    sys.stdout.write(json.dumps({'runtime': RUNTIME, 'wheels': report}))


try:
    main()
except Refused as refused:
    sys.stderr.write('%s\n' % refused)
    sys.exit(2)
