"""Check one patch-uwsgi wheel of the release matrix, and smoke-run its binary.

usage: python3 scripts/check-wheel.py WHEEL

From the wheel's file name it knows the platform (manylinux2014 / manylinux_2_17 or
musllinux_1_2, and the architecture), then checks:
  - the tags: both manylinux2014_<arch> and manylinux_2_17_<arch>, or musllinux_1_2_<arch>;
  - the binary's ELF machine and class (readelf -h);
  - glibc wheels: no symbol version newer than GLIBC_2.17 and only the C library's parts and
    libgcc_s in NEEDED (readelf -V, -d); musl wheels: a static binary (no NEEDED, no INTERP);
  - a smoke run, under qemu user emulation unless the machine is this one's: --version,
    `apply --probe` with a saved probe on a copy of vendor-samples/2.0.31, `check` (exit 0),
    `revert` (the tree byte-identical to the original).
Prints one line `ok WHEEL: ...` and exits 0, or prints what failed and exits 1.
Needs readelf, and for foreign architectures qemu-<arch>-static (Debian's qemu-user-static)
and, for glibc wheels, the cross C library (libc6-<arch>-cross) as the -L sysroot.
"""
import filecmp
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

# wheel arch -> (readelf machine, ELF class, qemu binary, Debian cross sysroot, dynamic loader)
ARCHES = {
    'x86_64': ('Advanced Micro Devices X86-64', 'ELF64', 'qemu-x86_64-static',
               '/usr/x86_64-linux-gnu', 'ld-linux-x86-64.so.2'),
    'i686': ('Intel 80386', 'ELF32', 'qemu-i386-static', '/usr/i686-linux-gnu', 'ld-linux.so.2'),
    'aarch64': ('AArch64', 'ELF64', 'qemu-aarch64-static', '/usr/aarch64-linux-gnu',
                'ld-linux-aarch64.so.1'),
    'ppc64le': ('PowerPC64', 'ELF64', 'qemu-ppc64le-static', '/usr/powerpc64le-linux-gnu',
                'ld64.so.2'),
    's390x': ('IBM S/390', 'ELF64', 'qemu-s390x-static', '/usr/s390x-linux-gnu', 'ld64.so.1'),
    'armv7l': ('ARM', 'ELF32', 'qemu-arm-static', '/usr/arm-linux-gnueabihf',
               'ld-linux-armhf.so.3'),
}
GLIBC_LIBS = {'libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'libgcc_s.so.1'}
NEWEST_GLIBC = (2, 17)


class Failed(Exception):
    pass


def readelf(flag, path):
    return subprocess.run(['readelf', flag, path], check=True, capture_output=True,
                          text=True).stdout


def platform_of(name):
    match = re.fullmatch(r'patch_uwsgi-([^-]+)-py3-none-([^-]+)\.whl', name)
    if not match:
        raise Failed('not a patch_uwsgi py3-none wheel name')
    version, tags = match.group(1), match.group(2).split('.')
    for arch in ARCHES:
        if tags == ['musllinux_1_2_' + arch]:
            return version, 'musl', arch
        if sorted(tags) == sorted(['manylinux2014_' + arch, 'manylinux_2_17_' + arch]):
            return version, 'glibc', arch
    raise Failed('platform tags %s are not manylinux2014 + manylinux_2_17 or musllinux_1_2 '
                 'of one known architecture' % '.'.join(tags))


def check_elf(binary, libc, arch):
    machine, elf_class, _, _, loader = ARCHES[arch]
    header = readelf('-h', binary)
    if not re.search(r'Machine:\s+%s\s*$' % re.escape(machine), header, re.M):
        raise Failed('ELF machine is not %s:\n%s' % (machine, header))
    if not re.search(r'Class:\s+%s\s*$' % elf_class, header, re.M):
        raise Failed('ELF class is not %s' % elf_class)
    needed = re.findall(r'\(NEEDED\)\s+Shared library: \[([^\]]+)\]', readelf('-d', binary))
    static = not needed and 'INTERP' not in readelf('-l', binary)
    if libc == 'musl':
        if not static:
            raise Failed('not a static binary: NEEDED %s' % needed)
        return 'static'
    if static:
        # glibc linked in (ppc64le, see build-wheels.sh): no symbol versions to check, and
        # nothing asked of the system's C library.
        return 'static (glibc linked in)'
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
    return 'glibc <= %d.%d, needs %s' % (versions[-1] + (' '.join(needed),))


def runner(libc, arch):
    if arch == platform.machine():
        return []
    _, _, qemu, sysroot, _ = ARCHES[arch]
    if not shutil.which(qemu):
        raise Failed('%s is missing (apt-get install qemu-user-static)' % qemu)
    if libc == 'musl':
        return [qemu]
    if not os.path.isdir(sysroot):
        raise Failed('%s is missing (the cross C library package, e.g. libc6-%s-cross)'
                     % (sysroot, arch))
    return [qemu, '-L', sysroot]


def smoke(binary, version, libc, arch):
    prefix = runner(libc, arch)

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
    version, libc, arch = platform_of(name)
    with tempfile.TemporaryDirectory() as unpacked:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
        binary = os.path.join(unpacked, 'patch_uwsgi-%s.data' % version, 'scripts', 'patch_uwsgi')
        if not os.path.isfile(binary):
            raise Failed('no patch_uwsgi-%s.data/scripts/patch_uwsgi inside' % version)
        os.chmod(binary, os.stat(binary).st_mode | stat.S_IXUSR)
        elf = check_elf(binary, libc, arch)
        how = smoke(binary, version, libc, arch)
        binary_size = os.path.getsize(binary)
    return '%s %s, %s; wheel %d bytes, binary %d bytes; smoke run %s: version apply check revert' % (
        libc, arch, elf, os.path.getsize(wheel), binary_size, how)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    wheel = sys.argv[1]
    try:
        print('ok %s: %s' % (os.path.basename(wheel), check(wheel)))
    except (Failed, subprocess.SubprocessError, OSError, zipfile.BadZipFile) as problem:
        print('FAILED %s: %s' % (os.path.basename(wheel), problem))
        sys.exit(1)


if __name__ == '__main__':
    main()
