#!/usr/bin/env bash
# The release matrix of patch-uwsgi, built on an x86_64 Linux machine, into OUTDIR: wheels for
# the 14 Linux platforms cibuildwheel builds on (manylinux and musllinux of x86_64, i686,
# aarch64, ppc64le, s390x, armv7l and riscv64), and the sdist. docs/wheels.md says which wheel
# serves which platform and why; in short:
#   - x86_64, i686, aarch64: two wheels each, cross-linked by maturin with zig: manylinux2014
#     (dynamic, glibc symbols <= 2.17) and musllinux_1_2 (static musl);
#   - ppc64le, s390x, armv7l, riscv64: one wheel each, tagged for both libcs (manylinux_2_17,
#     with its manylinux2014 alias where PEP 599 defines one, and musllinux_1_2), holding one
#     executable that links glibc statically with Debian's cross gcc. rustup has no musl
#     standard library for these targets, and a static executable asks nothing of the C
#     library of the system it runs on. maturin refuses to mix manylinux and musllinux tags,
#     so `wheel tags` (pinned in scripts/wheel-tools.txt) sets them after the build.
# Each wheel is then checked and smoke-run under qemu user emulation by scripts/check-wheel.py.
# Installs what it needs: the pinned tools of scripts/wheel-tools.txt into venvs/wheel-tools of
# the project's cache (see PATCH_UWSGI_CACHE below),
# the Rust targets (rustup), and on Debian (as root, or with password-less sudo) qemu-user-static,
# the cross C libraries and the cross compilers.
#
# A wheel already built from the same inputs is taken from a cache outside the clone instead
# of being built again: the key of a target hashes its row of the matrix, the bytes of every
# file the wheel is made from (src/, Cargo.toml, Cargo.lock, pyproject.toml, README.md, this
# script and the pinned tools, .cargo/ and rust-toolchain files if any), `rustc -vV`, the cross
# gcc's version and RUSTFLAGS. Cargo's
# own target folder is kept in the same place, so a changed source rebuilds only this crate.
# Cached or not, every wheel is checked and smoke-run.
#
# usage: scripts/build-wheels.sh OUTDIR
#        scripts/build-wheels.sh --keys   print each target's cache key and whether a wheel is
#                                         cached under it ("TARGET KEY cached|missing"); builds
#                                         and installs nothing
#   PATCH_UWSGI_WHEEL_TARGETS="aarch64-unknown-linux-gnu ..."  build only these (and no sdist)
#   PATCH_UWSGI_CACHE=DIR     the project's cache folder (default
#                             ${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline, shared with
#                             scripts/pipeline.sh): wheels/ and cargo's wheel-build/ go there.
#                             Cached wheels unused for 30 days are removed.
#   PATCH_UWSGI_WHEEL_CACHE=0  build every wheel afresh (and cache nothing)
set -euo pipefail
keys_only=
if [ "${1:-}" = --keys ]; then
    keys_only=1
else
    out=${1:?usage: scripts/build-wheels.sh OUTDIR | --keys}
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
fail() {
    echo "build-wheels: $*" >&2
    exit 2
}
if [ -z "$keys_only" ]; then
    mkdir -p "$out" || fail "cannot create the output folder $out"
    out=$(cd "$out" && pwd)
fi

# Rust target; maturin's --compatibility; the platform tags the wheel gets afterwards ("-": as
# maturin names them); Debian packages (the cross C library for the smoke run of a dynamic
# glibc wheel; the cross compiler and static C library where zig is not used); linker: zig,
# or a cross gcc linking glibc statically.
matrix="
x86_64-unknown-linux-gnu      manylinux2014 -                                                          -                                                 zig
i686-unknown-linux-gnu        manylinux2014 -                                                          libc6-i386-cross                                  zig
aarch64-unknown-linux-gnu     manylinux2014 -                                                          libc6-arm64-cross                                 zig
x86_64-unknown-linux-musl     musllinux_1_2 -                                                          -                                                 zig
i686-unknown-linux-musl       musllinux_1_2 -                                                          -                                                 zig
aarch64-unknown-linux-musl    musllinux_1_2 -                                                          -                                                 zig
powerpc64le-unknown-linux-gnu linux manylinux2014_ppc64le.manylinux_2_17_ppc64le.musllinux_1_2_ppc64le gcc-powerpc64le-linux-gnu,libc6-dev-ppc64el-cross powerpc64le-linux-gnu-gcc
s390x-unknown-linux-gnu       linux manylinux2014_s390x.manylinux_2_17_s390x.musllinux_1_2_s390x       gcc-s390x-linux-gnu,libc6-dev-s390x-cross         s390x-linux-gnu-gcc
armv7-unknown-linux-gnueabihf linux manylinux2014_armv7l.manylinux_2_17_armv7l.musllinux_1_2_armv7l    gcc-arm-linux-gnueabihf,libc6-dev-armhf-cross     arm-linux-gnueabihf-gcc
riscv64gc-unknown-linux-gnu   linux manylinux_2_17_riscv64.musllinux_1_2_riscv64                       gcc-riscv64-linux-gnu,libc6-dev-riscv64-cross     riscv64-linux-gnu-gcc
"
wanted=${PATCH_UWSGI_WHEEL_TARGETS:-all}
selected=$(echo "$matrix" | awk -v w=" $wanted " 'NF==5 && (w==" all " || index(w, " " $1 " "))')
if [ -z "$selected" ]; then
    fail "no target of the matrix matches PATCH_UWSGI_WHEEL_TARGETS=$wanted"
fi

# The project's cache, and the inputs of every wheel (see the top of this file), hashed once.
cache_root=${PATCH_UWSGI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline}
cache=$cache_root/wheels
[ "${PATCH_UWSGI_WHEEL_CACHE:-1}" != 0 ] || cache=
if [ -n "$cache" ]; then
    mkdir -p "$cache" || fail "cannot create the wheel cache $cache (PATCH_UWSGI_CACHE)"
    sources=$(cd "$repo" && {
        find src -type f -print0 | sort -z | xargs -0 sha256sum
        sha256sum Cargo.toml Cargo.lock pyproject.toml README.md \
            scripts/build-wheels.sh scripts/wheel-tools.txt
        # Cargo's and rustup's configuration, where the project has any.
        find .cargo rust-toolchain rust-toolchain.toml -type f -print0 2>/dev/null \
            | sort -z | xargs -0 -r sha256sum
        rustc -vV
        echo "RUSTFLAGS=${RUSTFLAGS:-} CARGO_BUILD_RUSTFLAGS=${CARGO_BUILD_RUSTFLAGS:-}"
    } | sha256sum | cut -c1-64) || fail "cannot hash the inputs of the wheels in $repo"
fi
# The cache key of one row of the matrix (its five words as arguments).
row_key() {
    local linker_version=-
    [ "$5" = zig ] || linker_version=$("$5" --version 2>/dev/null | head -n 1)
    printf '%s\n' "$sources" "$*" "$linker_version" | sha256sum | cut -c1-32
}
# The wheel cached under a key, if there is exactly one.
cached_wheel() {
    local found
    found=$(ls "$cache/$1"/*.whl 2>/dev/null || true)
    [ "$(echo "$found" | grep -c .)" = 1 ] && echo "$found"
}
if [ -n "$keys_only" ]; then
    [ -n "$cache" ] || fail "--keys: the wheel cache is off (PATCH_UWSGI_WHEEL_CACHE=0)"
    while read -r target compatibility tags debs linker <&3; do
        key=$(row_key "$target" "$compatibility" "$tags" "$debs" "$linker")
        state=missing
        cached_wheel "$key" >/dev/null && state=cached
        echo "$target $key $state"
    done 3<<< "$selected"
    exit 0
fi

# Tools: maturin, zig and wheel from PyPI, pinned, in a venv of their own (made again when
# scripts/wheel-tools.txt changed since; the venv keeps a copy of it).
tools=$cache_root/venvs/wheel-tools
if ! cmp -s "$repo/scripts/wheel-tools.txt" "$tools/wheel-tools.txt" \
    || [ ! -x "$tools/bin/maturin" ] || [ ! -x "$tools/bin/wheel" ]; then
    rm -rf "$tools" || fail "cannot remove the old tools venv $tools"
    mkdir -p "$cache_root/venvs" || fail "cannot create $cache_root/venvs (PATCH_UWSGI_CACHE)"
    python3 -m venv "$tools" || fail "python3 -m venv $tools failed"
    "$tools/bin/pip" install -q -r "$repo/scripts/wheel-tools.txt" \
        || fail "could not install the tools of scripts/wheel-tools.txt from PyPI"
    cp "$repo/scripts/wheel-tools.txt" "$tools/wheel-tools.txt"
fi
export PATH="$tools/bin:$PATH"

# qemu, the cross C libraries and compilers (Debian); check-wheel.py names what is
# still missing for a smoke run, and a missing cross gcc fails its target below.
packages="qemu-user-static"
for package in $(echo "$selected" | awk '$4 != "-" {print $4}' | tr ',' ' '); do
    packages="$packages $package"
done
missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
    # As root, or through sudo where it asks no password (a CI runner).
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo -n)
    if command -v apt-get >/dev/null && "${as_root[@]}" true 2>/dev/null; then
        "${as_root[@]}" apt-get update -qq \
            || fail "apt-get update failed (needed for: $(echo $missing))"
        # shellcheck disable=SC2086
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
            || fail "apt-get install failed for: $(echo $missing)"
    else
        echo "build-wheels: not installing $(echo $missing): no apt-get, or not root and no" \
            "password-less sudo" >&2
    fi
fi

# Cargo's target folder, outside the clone: a fresh clone reuses the compiled dependencies.
# Its own folder, apart from target/: a `cargo test` running meanwhile holds the lock on that.
build_dir=$cache_root/wheel-build
mkdir -p "$build_dir" || fail "cannot create cargo's target folder $build_dir"
# maturin moves the binary out of the target folder after cargo's own lock is released: two
# builds of one target at once (two clones, two test binaries) would lose it.
exec 9>"$build_dir/.build-wheels.lock"
flock 9 || fail "cannot lock $build_dir/.build-wheels.lock"

started=$(date +%s)
failed=0
# The rows come on fd 3, so that nothing run in the loop can read them from stdin.
while read -r target compatibility tags debs linker <&3; do
    if ! rustup target list --installed | grep -qx "$target" && ! rustup target add "$target"; then
        echo "FAILED $target: rustup could not add the target" && failed=1 && continue
    fi
    if [ -n "$cache" ]; then
        key=$(row_key "$target" "$compatibility" "$tags" "$debs" "$linker")
        if cached=$(cached_wheel "$key"); then
            cp "$cached" "$out/" || fail "cannot copy $cached into $out"
            touch "$cache/$key"
            echo "cached $target: $(basename "$cached") (inputs $key)"
            python3 "$repo/scripts/check-wheel.py" "$out/$(basename "$cached")" || failed=1
            continue
        fi
    fi
    if [ "$linker" = zig ]; then
        how=(--zig)
    else
        # Static glibc, linked by the named cross gcc (see the top of this file).
        if ! command -v "$linker" >/dev/null; then
            echo "FAILED $target: no $linker on PATH (Debian packages ${debs//,/ })"
            failed=1 && continue
        fi
        upper=$(echo "$target" | tr 'a-z-' 'A-Z_')
        export "CARGO_TARGET_${upper}_LINKER=$linker"
        export "CARGO_TARGET_${upper}_RUSTFLAGS=-C target-feature=+crt-static"
        how=(--auditwheel skip)
    fi
    # Each wheel is made in a folder of its own first, then (retagged and) moved to OUTDIR.
    scratch=$(mktemp -d "$out/.build-XXXXXX")
    built=$(CARGO_TARGET_DIR=$build_dir maturin build --release "${how[@]}" \
        --manifest-path "$repo/Cargo.toml" --target "$target" \
        --compatibility "$compatibility" --out "$scratch" 2>&1) || {
        echo "$built" | tail -n 30 >&2
        echo "FAILED $target: maturin could not build it" && failed=1 && rm -rf "$scratch" && continue
    }
    # glibc warns when a static link pulls in what needs its shared parts at run time (NSS,
    # dlopen, iconv); such a binary would not be self-contained.
    if echo "$built" | grep -q 'statically linked applications requires at runtime'; then
        echo "$built" | grep 'statically linked applications' >&2
        echo "FAILED $target: the static link uses parts of glibc that need its shared libraries"
        failed=1 && rm -rf "$scratch" && continue
    fi
    wheel=$(ls "$scratch"/*.whl)
    if [ "$tags" != - ]; then
        retagged=$(wheel tags --remove --platform-tag "$tags" "$wheel") || {
            echo "FAILED $target: wheel tags --platform-tag $tags failed on $wheel"
            failed=1 && rm -rf "$scratch" && continue
        }
        wheel=$scratch/$retagged
    fi
    mv -f "$wheel" "$out/" || fail "cannot move $wheel into $out"
    rm -rf "$scratch"
    if [ -n "$cache" ]; then
        # Into the cache whole or not at all: a folder made aside, then renamed into place.
        entry=$(mktemp -d "$cache/.new-XXXXXX") \
            && cp "$out/$(basename "$wheel")" "$entry/" \
            && rm -rf "${cache:?}/$key" && mv "$entry" "$cache/$key" \
            || echo "build-wheels: could not keep $(basename "$wheel") in the cache $cache" >&2
    fi
    python3 "$repo/scripts/check-wheel.py" "$out/$(basename "$wheel")" || failed=1
done 3<<< "$selected"

if [ -n "$cache" ]; then
    find "$cache" -mindepth 1 -maxdepth 1 -mtime +30 -exec rm -rf {} + 2>/dev/null || true
fi

if [ "$wanted" = all ]; then
    maturin sdist --manifest-path "$repo/Cargo.toml" --out "$out" >/dev/null \
        || { echo "FAILED sdist: maturin sdist failed"; failed=1; }
fi
echo "build-wheels: $(ls "$out" | wc -l) files in $out in $(( $(date +%s) - started )) s"
ls -l "$out"
exit $failed
