#!/usr/bin/env bash
# Side-by-side timing of extracting one archive from a manylinux-style tarball:
# `tar -xJf TARBALL MEMBER` against `patch_uwsgi locate --no-pie no` (probe, then extract the
# member and stop reading), the same with the -no-pie probe link, and a second `locate` (archive
# extracted, probe-link answer cached) against one bare interpreter launch.
# Usage: benches/extract.sh [RUNS]   (needs pyenv CPython 3.8 and 3.12; builds a release binary)
runs="${1:-5}"
source "$(dirname "$0")/common.sh"
py38="$HOME/.pyenv/versions/3.8.18/bin/python3.8"
mkdir -p "$work/stage/cpython-3.8.18/lib" "$work/stage/cpython-3.12.1/lib" "$work/root" "$work/out"
cp "$(archive_of "$py38")" "$work/stage/cpython-3.8.18/lib/"
cp "$(archive_of "$py312")" "$work/stage/cpython-3.12.1/lib/"
tarball="$work/root/static-libs-for-embedding-only.tar.xz"
(cd "$work/stage" && tar -cJf "$tarball" cpython-3.8.18 cpython-3.12.1)
echo "tarball: $(du -h "$tarball" | cut -f1), member cpython-3.12.1/lib/libpython3.12.a (last of two)"
tar_ms=$(for _ in $(seq "$runs"); do t tar -xJf "$tarball" -C "$work/out" cpython-3.12.1/lib/libpython3.12.a; done | best)
ours_ms=$(for _ in $(seq "$runs"); do rm -f "$work/cpython-3.12.1/lib/libpython3.12.a"; t env XDG_CACHE_HOME="$work/cache" "$bin" locate --python "$python" --manylinux-root "$work/root" --no-pie no; done | best)
linked_ms=$(for _ in $(seq "$runs"); do rm -rf "$work/cpython-3.12.1/lib/libpython3.12.a" "$work/cache/patch-uwsgi/pie-probe"; t env XDG_CACHE_HOME="$work/cache" "$bin" locate --python "$python" --manylinux-root "$work/root"; done | best)
cached_ms=$(for _ in $(seq "$runs"); do t env XDG_CACHE_HOME="$work/cache" "$bin" locate --python "$python" --manylinux-root "$work/root"; done | best)
probe="$(cat "$repo/src/plan/probe.py")"
launch_ms=$(for _ in $(seq "$runs"); do t "$python" -S -c "$probe"; done | best)
echo "best of $runs runs, milliseconds:"
echo "  tar -xJf TARBALL MEMBER:                   $tar_ms"
echo "  patch_uwsgi locate --no-pie no (extracts): $ours_ms"
echo "  patch_uwsgi locate (extracts, probe link): $linked_ms"
echo "  patch_uwsgi locate again (all cached):     $cached_ms"
echo "  the probe alone (one launch):              $launch_ms"
