#!/usr/bin/env bash
# Timing of `patch_uwsgi verify` (probe, locate, compile, link, run, imports) on a static-only
# CPython 3.12 whose archive is only in a manylinux-style tarball: the first run extracts the
# archive, later runs find it. Also `apply` on a fresh copy of the 2.0.31 tree with the same
# Python (probe + plan + PIE probe link + writes), for comparison.
# Usage: benches/verify.sh [RUNS]   (needs pyenv CPython 3.12; builds a release binary)
runs="${1:-5}"
source "$(dirname "$0")/common.sh"
mkdir -p "$work/stage/cpython-3.12.1/lib" "$work/root"
cp "$(archive_of "$py312")" "$work/stage/cpython-3.12.1/lib/"
(cd "$work/stage" && tar -cJf "$work/root/static-libs-for-embedding-only.tar.xz" cpython-3.12.1)
verify() { env XDG_CACHE_HOME="$work/cache" "$bin" verify --python "$python" --manylinux-root "$work/root"; }
first=$(for _ in $(seq "$runs"); do rm -f "$work/cpython-3.12.1/lib/libpython3.12.a"; t verify; done)
later=$(for _ in $(seq "$runs"); do t verify; done)
apply=$(for i in $(seq "$runs"); do cp -r "$repo/vendor-samples/2.0.31" "$work/tree$i"; t "$bin" apply "$work/tree$i" --python "$python" --manylinux-root "$work/root"; done)
echo "$runs runs each, milliseconds (best / median):"
echo "  verify, extracting the archive:     $(echo "$first" | best) / $(echo "$first" | median)"
echo "  verify, archive already extracted:  $(echo "$later" | best) / $(echo "$later" | median)"
echo "  apply on a fresh 2.0.31 tree:       $(echo "$apply" | best) / $(echo "$apply" | median)"
