#!/usr/bin/env bash
# A free-threaded CPython (--disable-gil) laid out as a manylinux image lays out its cp313t:
# built from the same upstream source as the stand-in's 3.13 (the .orig tarball of Debian's
# python3.13 source package, pinned by sha256 in scripts/standin/build.sh), configured
# --disable-shared --disable-gil, installed as ROOT/cpython-X.Y.Z-nogil, its archive then packed
# into ROOT/static-libs-for-embedding-only.tar.xz as manylinux's finalize.sh does and deleted.
# Built on this machine (no container: only the interpreter's free-threaded ABI matters here),
# once, cached by the inputs; prints ROOT (give it to --manylinux-root).
#
# usage: scripts/freethreaded-python.sh
#   PATCH_UWSGI_CACHE  cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${PATCH_UWSGI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline}
die() { echo "freethreaded-python: $*" >&2; exit 1; }

# The stand-in's pin for 3.13: "version suite pool-path sha256".
pin=$(sed -nE 's/^ *"(3\.13\.[0-9]+ .*)"$/\1/p' "$repo/scripts/standin/build.sh" | head -n 1)
[ -n "$pin" ] || die "no 3.13 source pinned in scripts/standin/build.sh (CPYTHON_SOURCES)"
read -r version _ pool sha <<<"$pin"
key=$( { cat "$0"; echo "$pin"; } | sha256sum | cut -c1-16)
root=$cache/freethreaded/$key
if [ -f "$root/complete" ]; then
    echo "$root"
    exit 0
fi

mirror=$(sed -nE 's#^\s*(deb\s+(\[[^]]*\]\s+)?|URIs:\s*)(https?://\S+/debian)/?(\s.*)?$#\3#p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
downloads=$cache/downloads
mkdir -p "$downloads"
source_tarball=$downloads/$(basename "$pool")
if ! echo "$sha  $source_tarball" | sha256sum -c --status - 2>/dev/null; then
    echo "freethreaded-python: downloading $mirror/$pool" >&2
    curl -fsSL --retry 5 -o "$source_tarball.part" "$mirror/$pool"
    echo "$sha  $source_tarball.part" | sha256sum -c --status - \
        || die "sha256 mismatch for $mirror/$pool (expected $sha)"
    mv -f "$source_tarball.part" "$source_tarball"
fi

building=$root.building
rm -rf "$building"
mkdir -p "$building/src"
started=$(date +%s)
tar -xf "$source_tarball" -C "$building/src"
src=$(ls -d "$building"/src/Python-*/)
name=cpython-$version-nogil
log=$building/build.log
echo "freethreaded-python: building $name (log: $log)" >&2
(
    cd "$src"
    ./configure --prefix="$root/$name" --disable-shared --disable-gil --with-ensurepip=no
    make -j"$(nproc)"
    # Installed straight into its final place (the prefix is compiled in), then marked
    # complete below only when everything worked.
    rm -rf "$root"
    make install
) >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "the build failed (log: $log)"; }
(cd "$root" && tar -cJf static-libs-for-embedding-only.tar.xz "$name"/lib/libpython*.a)
find "$root" -name '*.a' -delete
mv "$log" "$root/build.log"
rm -rf "$building"
echo "built in $(( $(date +%s) - started )) s" > "$root/complete"
echo "freethreaded-python: $(cat "$root/complete")" >&2
echo "$root"
