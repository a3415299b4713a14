#!/usr/bin/env bash
# The release matrix of patch-uwsgi, built on an x86_64 Linux machine: manylinux2014
# (manylinux_2_17) wheels for x86_64, i686, aarch64, ppc64le, s390x and armv7l, musllinux_1_2
# wheels for x86_64, aarch64 and i686, and the sdist, all into OUTDIR. maturin with zig
# cross-links every target but ppc64le: zig provides no glibc older than 2.19 there (and fails
# below 2.32), and Debian's cross linker pulls in symbols up to GLIBC_2.34, so the ppc64le
# binary links glibc statically with Debian's cross gcc (no symbol versions, nothing needed from
# the system's C library, so it fits manylinux2014); each wheel is then checked and smoke-run under qemu user
# emulation by scripts/check-wheel.py. Installs what it needs: the pinned tools of
# scripts/wheel-tools.txt into target/wheel-tools, the Rust targets (rustup), and as root on
# Debian qemu-user-static and the cross C libraries.
#
# usage: scripts/build-wheels.sh OUTDIR
#   PATCH_UWSGI_WHEEL_TARGETS="aarch64-unknown-linux-gnu ..."  build only these (and no sdist)
set -euo pipefail
out=${1:?usage: scripts/build-wheels.sh OUTDIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Rust target, compatibility, Debian packages (the cross C library for the smoke run of a
# glibc wheel; the cross compiler where zig is not used), linker: zig, or a gcc linking statically.
matrix="
x86_64-unknown-linux-gnu        manylinux2014 -                                           zig
i686-unknown-linux-gnu          manylinux2014 libc6-i386-cross                            zig
aarch64-unknown-linux-gnu       manylinux2014 libc6-arm64-cross                           zig
powerpc64le-unknown-linux-gnu   manylinux2014 libc6-ppc64el-cross,gcc-powerpc64le-linux-gnu powerpc64le-linux-gnu-gcc
s390x-unknown-linux-gnu         manylinux2014 libc6-s390x-cross                           zig
armv7-unknown-linux-gnueabihf   manylinux2014 libc6-armhf-cross                           zig
x86_64-unknown-linux-musl       musllinux_1_2 -                                           zig
aarch64-unknown-linux-musl      musllinux_1_2 -                                           zig
i686-unknown-linux-musl         musllinux_1_2 -                                           zig
"
wanted=${PATCH_UWSGI_WHEEL_TARGETS:-all}
selected=$(echo "$matrix" | awk -v w=" $wanted " 'NF==4 && (w==" all " || index(w, " " $1 " "))')
if [ -z "$selected" ]; then
    echo "build-wheels: no target of the matrix matches PATCH_UWSGI_WHEEL_TARGETS=$wanted" >&2
    exit 2
fi

# Tools: maturin and zig from PyPI, pinned, in a venv of their own.
tools=$repo/target/wheel-tools
if ! "$tools/bin/python" -c "import ziglang" 2>/dev/null || [ ! -x "$tools/bin/maturin" ]; then
    python3 -m venv "$tools"
    "$tools/bin/pip" install -q -r "$repo/scripts/wheel-tools.txt"
fi
export PATH="$tools/bin:$PATH"

# qemu and the cross C libraries (Debian, as root); check-wheel.py names what is still missing.
packages="qemu-user-static"
for package in $(echo "$selected" | awk '$3 != "-" {print $3}' | tr ',' ' '); do packages="$packages $package"; done
missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

started=$(date +%s)
failed=0
while read -r target compatibility _ linker; do
    if ! rustup target list --installed | grep -qx "$target" && ! rustup target add "$target"; then
        echo "FAILED $target: rustup could not add the target" && failed=1 && continue
    fi
    if [ "$linker" = zig ]; then
        how=(--zig)
    else
        # Static glibc, linked by the named cross gcc (see the top of this file).
        upper=$(echo "$target" | tr 'a-z-' 'A-Z_')
        export "CARGO_TARGET_${upper}_LINKER=$linker"
        export "CARGO_TARGET_${upper}_RUSTFLAGS=-C target-feature=+crt-static"
        how=()
    fi
    # Its own target folder: a `cargo test` running meanwhile holds the lock on target/.
    built=$(CARGO_TARGET_DIR=$repo/target/wheel-build maturin build --release "${how[@]}" \
        --manifest-path "$repo/Cargo.toml" --target "$target" \
        --compatibility "$compatibility" --out "$out" 2>&1) || {
        echo "$built" | tail -n 30 >&2
        echo "FAILED $target: maturin could not build it" && failed=1 && continue
    }
    wheel=$(echo "$built" | sed -n 's/.*Built wheel to //p' | tail -n1)
    python3 "$repo/scripts/check-wheel.py" "$wheel" || failed=1
done <<< "$selected"

if [ "$wanted" = all ]; then
    maturin sdist --manifest-path "$repo/Cargo.toml" --out "$out" >/dev/null
fi
echo "build-wheels: $(ls "$out" | wc -l) files in $out in $(( $(date +%s) - started )) s"
ls -l "$out"
exit $failed
