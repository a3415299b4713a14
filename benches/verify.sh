#!/usr/bin/env bash
# Timing of `patch_uwsgi verify` (probe, locate, compile, link, run, imports) on a static-only
# CPython 3.12 whose archive is only in a manylinux-style tarball: the first run extracts the
# archive, later runs find it. Also `apply` on a fresh copy of the 2.0.31 tree with the same
# Python (probe + plan + PIE probe link + writes), for comparison.
# Usage: benches/verify.sh [RUNS]   (needs pyenv CPython 3.12; builds a release binary)
set -euo pipefail
runs="${1:-5}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/patch_uwsgi"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
py312="$HOME/.pyenv/versions/3.12.1/bin/python3.12"
python="$("$py312" "$repo/tests/support/make_static_prefix.py" "$work" cpython-3.12.1)"
mkdir -p "$work/stage/cpython-3.12.1/lib" "$work/root"
cp "$("$py312" -c "import sysconfig as s; print(s.get_config_var('LIBPL') + '/' + s.get_config_var('LIBRARY'))")" "$work/stage/cpython-3.12.1/lib/"
(cd "$work/stage" && tar -cJf "$work/root/static-libs-for-embedding-only.tar.xz" cpython-3.12.1)
best() { sort -n | head -n1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
verify() { env XDG_CACHE_HOME="$work/cache" "$bin" verify --python "$python" --manylinux-root "$work/root"; }
first=$(for _ in $(seq "$runs"); do rm -f "$work/cpython-3.12.1/lib/libpython3.12.a"; t verify; done)
later=$(for _ in $(seq "$runs"); do t verify; done)
apply=$(for i in $(seq "$runs"); do cp -r "$repo/vendor-samples/2.0.31" "$work/tree$i"; t "$bin" apply "$work/tree$i" --python "$python" --manylinux-root "$work/root"; done)
echo "$runs runs each, milliseconds (best / median):"
echo "  verify, extracting the archive:     $(echo "$first" | best) / $(echo "$first" | median)"
echo "  verify, archive already extracted:  $(echo "$later" | best) / $(echo "$later" | median)"
echo "  apply on a fresh 2.0.31 tree:       $(echo "$apply" | best) / $(echo "$apply" | median)"
