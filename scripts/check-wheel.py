"""Check one patch-uwsgi wheel of the release matrix, and smoke-run its binary.

usage: python3 scripts/check-wheel.py WHEEL

From the wheel's file name it knows the architecture and the libcs the wheel claims, then checks:
  - the tags, one of three shapes: glibc (manylinux_2_17_<arch> with its manylinux2014_<arch>
    alias, which PEP 599 defines for every architecture here but riscv64), musl
    (musllinux_1_2_<arch>), or both (the glibc tags and musllinux_1_2_<arch>);
  - the dist-info: the WHEEL file's Tag lines are the file name's, and RECORD lists every file
    of the archive with its right sha256 and size (the static wheels are retagged after maturin);
  - the binary's ELF machine, class and byte order, and the hard-float ABI on armv7l (readelf -h);
  - a wheel for glibc only: no symbol version newer than GLIBC_2.17 and only the C library's
    parts and libgcc_s in NEEDED (readelf -V, -d), or a static binary; a wheel for musl, or for
    both: a static binary (no NEEDED, no INTERP), so nothing is asked of the system's C library;
  - a smoke run, under qemu user emulation unless the machine is this one's (a dynamic glibc
    binary with Debian's cross C library as -L, a static one with nothing else): --version,
    `apply --probe` with a saved probe on a copy of vendor-samples/2.0.31, `check` (exit 0),
    `revert` (the tree byte-identical to the original).
Prints one line `ok WHEEL: ...` and exits 0, or prints what failed and exits 1.
Needs readelf, and for foreign architectures qemu-<arch>-static (Debian's qemu-user-static)
and, for dynamic glibc wheels, the cross C library (libc6-<arch>-cross) as the -L sysroot.
"""
import base64
import csv
import filecmp
import hashlib
import io
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# wheel arch -> (readelf machine, ELF class, byte order, qemu binary, Debian cross sysroot,
# dynamic loader)
ARCHES = {
    'x86_64': ('Advanced Micro Devices X86-64', 'ELF64', 'little', 'qemu-x86_64-static',
               '/usr/x86_64-linux-gnu', 'ld-linux-x86-64.so.2'),
    'i686': ('Intel 80386', 'ELF32', 'little', 'qemu-i386-static', '/usr/i686-linux-gnu',
             'ld-linux.so.2'),
    'aarch64': ('AArch64', 'ELF64', 'little', 'qemu-aarch64-static', '/usr/aarch64-linux-gnu',
                'ld-linux-aarch64.so.1'),
    'ppc64le': ('PowerPC64', 'ELF64', 'little', 'qemu-ppc64le-static',
                '/usr/powerpc64le-linux-gnu', 'ld64.so.2'),
    's390x': ('IBM S/390', 'ELF64', 'big', 'qemu-s390x-static', '/usr/s390x-linux-gnu',
              'ld64.so.1'),
    'armv7l': ('ARM', 'ELF32', 'little', 'qemu-arm-static', '/usr/arm-linux-gnueabihf',
               'ld-linux-armhf.so.3'),
    'riscv64': ('RISC-V', 'ELF64', 'little', 'qemu-riscv64-static', '/usr/riscv64-linux-gnu',
                'ld-linux-riscv64-lp64d.so.1'),
}
# PEP 599 names manylinux2014 (= manylinux_2_17) for these; PyPI refuses the alias elsewhere.
MANYLINUX2014_ARCHES = {'x86_64', 'i686', 'aarch64', 'ppc64le', 's390x', 'armv7l'}
GLIBC_LIBS = {'libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'libgcc_s.so.1'}
NEWEST_GLIBC = (2, 17)


class Failed(Exception):
    pass


def readelf(flag, path):
    return subprocess.run(['readelf', flag, path], check=True, capture_output=True,
                          text=True).stdout


def glibc_tags(arch):
    tags = {'manylinux_2_17_' + arch}
    if arch in MANYLINUX2014_ARCHES:
        tags.add('manylinux2014_' + arch)
    return tags


def platform_of(name):
    """(version, tags, libcs, arch) from the wheel's file name; libcs is a subset of
    {'glibc', 'musl'}."""
    match = re.fullmatch(r'patch_uwsgi-([^-]+)-py3-none-([^-]+)\.whl', name)
    if not match:
        raise Failed('not a patch_uwsgi py3-none wheel name')
    version, tags = match.group(1), match.group(2).split('.')
    for arch in ARCHES:
        many, musl = glibc_tags(arch), {'musllinux_1_2_' + arch}
        shapes = {'glibc': many, 'musl': musl, 'glibc+musl': many | musl}
        for libcs, shape in shapes.items():
            if sorted(tags) == sorted(shape):
                return version, tags, set(libcs.split('+')), arch
    raise Failed('platform tags %s are not manylinux_2_17 (with manylinux2014 where PEP 599 '
                 'has it), musllinux_1_2, or both, of one known architecture' % '.'.join(tags))


def check_dist_info(archive, version, tags):
    """WHEEL's tags are the file name's; RECORD lists every file with its hash and size."""
    info = 'patch_uwsgi-%s.dist-info/' % version
    names = {i.filename for i in archive.infolist() if not i.is_dir()}
    for needed in ('WHEEL', 'RECORD'):
        if info + needed not in names:
            raise Failed('no %s%s inside' % (info, needed))
    wheel = archive.read(info + 'WHEEL').decode()
    said = sorted(l.split(':', 1)[1].strip() for l in wheel.splitlines() if l.startswith('Tag:'))
    if said != sorted('py3-none-' + t for t in tags):
        raise Failed('%sWHEEL says tags %s, the file name %s' % (info, said, tags))
    record = list(csv.reader(io.StringIO(archive.read(info + 'RECORD').decode())))
    listed = {row[0] for row in record if row}
    if listed != names:
        raise Failed('RECORD lists %s, the archive holds %s' % (
            sorted(listed - names), sorted(names - listed)))
    for path, digest, size in (row for row in record if row and row[0] != info + 'RECORD'):
        data = archive.read(path)
        want = 'sha256=' + base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b'=').decode()
        if digest != want or size != str(len(data)):
            raise Failed('RECORD is wrong for %s: %s %s, the file is %s %d' % (
                path, digest, size, want, len(data)))
    binary = archive.getinfo('patch_uwsgi-%s.data/scripts/patch_uwsgi' % version)
    if not (binary.external_attr >> 16) & 0o100:
        raise Failed('the binary is not executable in the archive (mode %o)'
                     % (binary.external_attr >> 16))


def check_elf(binary, libcs, arch):
    """Returns (what the binary is, whether it is static)."""
    machine, elf_class, order, _, _, loader = ARCHES[arch]
    header = readelf('-h', binary)
    if not re.search(r'Machine:\s+%s\s*$' % re.escape(machine), header, re.M):
        raise Failed('ELF machine is not %s:\n%s' % (machine, header))
    if not re.search(r'Class:\s+%s\s*$' % elf_class, header, re.M):
        raise Failed('ELF class is not %s' % elf_class)
    if not re.search(r'Data:\s+.*%s endian' % order, header):
        raise Failed('ELF byte order is not %s endian' % order)
    if arch == 'armv7l' and 'hard-float ABI' not in header:
        raise Failed('not the hard-float ABI (armhf), which pip on armv7l requires')
    needed = re.findall(r'\(NEEDED\)\s+Shared library: \[([^\]]+)\]', readelf('-d', binary))
    static = not needed and 'INTERP' not in readelf('-l', binary)
    if 'musl' in libcs:
        if not static:
            raise Failed('a wheel for musl, but not a static binary: NEEDED %s' % needed)
        if 'glibc' in libcs:
            # glibc linked in (see build-wheels.sh): no symbol versions, nothing asked of the
            # system's C library, whichever it is.
            return 'static, for glibc and musl', True
        return 'static', True
    if static:
        return 'static (glibc linked in)', True
    extra = sorted(set(needed) - GLIBC_LIBS - {loader})
    if extra:
        raise Failed('needs %s beyond the C library and libgcc_s' % extra)
    versions = sorted(set(
        tuple(int(p) for p in v.split('.')[:2])
        for v in re.findall(r'GLIBC_(\d+\.\d+(?:\.\d+)?)', readelf('-V', binary))))
    if not versions:
        raise Failed('no GLIBC symbol versions found')
    if versions[-1] > NEWEST_GLIBC:
        raise Failed('needs GLIBC_%d.%d, newer than manylinux2014 allows' % versions[-1])
    return 'glibc <= %d.%d, needs %s' % (versions[-1] + (' '.join(needed),)), False


def runner(static, arch):
    if arch == platform.machine():
        return []
    _, _, _, qemu, sysroot, _ = ARCHES[arch]
    if not shutil.which(qemu):
        raise Failed('%s is missing (apt-get install qemu-user-static)' % qemu)
    if static:
        # No -L: the run proves the binary needs no C library from the system.
        return [qemu]
    if not os.path.isdir(sysroot):
        raise Failed('%s is missing (the cross C library package, e.g. libc6-%s-cross)'
                     % (sysroot, arch))
    return [qemu, '-L', sysroot]


def smoke(binary, version, static, arch):
    prefix = runner(static, arch)

    def run(*args, **kwargs):
        return subprocess.run(prefix + [binary] + list(args), capture_output=True, text=True,
                              timeout=120, **kwargs)

    said = run('--version')
    if said.returncode != 0 or said.stdout.strip() != 'patch_uwsgi %s' % version:
        raise Failed('--version said %r %r' % (said.stdout, said.stderr))
    probe = os.path.join(REPO, 'vendor-samples/sysconfig/pyenv-cpython-3.12.1.json')
    sample = os.path.join(REPO, 'vendor-samples/2.0.31')
    with tempfile.TemporaryDirectory() as work:
        tree = os.path.join(work, 'uwsgi')
        shutil.copytree(sample, tree)
        for command, code in (('apply', 0), ('check', 0), ('revert', 0)):
            extra = [] if command == 'revert' else ['--mode', 'nolib', '--probe', probe]
            done = run(command, tree, *extra)
            if done.returncode != code:
                raise Failed('%s exited %s: %s%s' % (command, done.returncode, done.stdout,
                                                      done.stderr))
        compared = filecmp.dircmp(sample, tree)
        if not same_tree(compared):
            raise Failed('revert did not give back the vendored tree byte for byte')
    return 'emulated' if prefix else 'native'


def same_tree(compared):
    if compared.left_only or compared.right_only:
        return False
    _, mismatch, errors = filecmp.cmpfiles(compared.left, compared.right, compared.common_files,
                                           shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(sub) for sub in compared.subdirs.values())


def check(wheel):
    name = os.path.basename(wheel)
    version, tags, libcs, arch = platform_of(name)
    with tempfile.TemporaryDirectory() as unpacked:
        with zipfile.ZipFile(wheel) as archive:
            check_dist_info(archive, version, tags)
            archive.extractall(unpacked)
        binary = os.path.join(unpacked, 'patch_uwsgi-%s.data' % version, 'scripts', 'patch_uwsgi')
        if not os.path.isfile(binary):
            raise Failed('no patch_uwsgi-%s.data/scripts/patch_uwsgi inside' % version)
        os.chmod(binary, os.stat(binary).st_mode | stat.S_IXUSR)
        elf, static = check_elf(binary, libcs, arch)
        how = smoke(binary, version, static, arch)
        binary_size = os.path.getsize(binary)
    return '%s %s, %s; wheel %d bytes, binary %d bytes; smoke run %s: version apply check revert' % (
        '+'.join(sorted(libcs)), arch, elf, os.path.getsize(wheel), binary_size, how)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    wheel = sys.argv[1]
    try:
        print('ok %s: %s' % (os.path.basename(wheel), check(wheel)))
    except (Failed, subprocess.SubprocessError, OSError, zipfile.BadZipFile, KeyError,
            UnicodeDecodeError, ValueError) as problem:
        print('FAILED %s: %s' % (os.path.basename(wheel), problem))
        sys.exit(1)


if __name__ == '__main__':
    main()
