#!/usr/bin/env bash
# Side by side, in one run, on the uWSGI 2.0.29 default-profile wheel built by `pip wheel` for a
# static-only pyenv CPython 3.11 (its archive only in a manylinux-style tarball):
#   `patch_uwsgi bundle`        against Python's `zipfile.ZipFile(wheel).testzip()` of the
#                               same (input) wheel: a full read and CRC check;
#   `patch_uwsgi verify --wheel` of the bundled wheel against `python -m venv` + `pip install
#                               --no-deps` of the same wheel (what a user does to install it);
#                               with its own installer (the default) and, for reference, with
#                               `--installer pip`.
# Runs alternate (baseline, ours) RUNS times; prints each time, the medians and their ratio.
# Usage: benches/wheel_speed.sh [RUNS], or `cargo bench --bench wheel_speed`   (needs pyenv CPython 3.11, the uWSGI 2.0.29 sdist in
# the project cache or on PyPI, the frontend tool wheels of tests/support/tools.rs; builds a
# release binary; the uWSGI build takes a few minutes, then the timings about one)
set -euo pipefail
runs="${1:-5}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$target/release/patch_uwsgi"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cache="${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline"
py311="$HOME/.pyenv/versions/3.11.7/bin/python3.11"
python="$("$py311" "$repo/tests/support/make_static_prefix.py" "$work" cpython-3.11.7)"
archive="$("$py311" -c "import sysconfig as s; print(s.get_config_var('LIBPL') + '/' + s.get_config_var('LIBRARY'))")"
mkdir -p "$work/stage/cpython-3.11.7/lib" "$work/root"
cp "$archive" "$work/stage/cpython-3.11.7/lib/"
(cd "$work/stage" && tar -cJf "$work/root/static-libs-for-embedding-only.tar.xz" cpython-3.11.7)
sdist="$cache/uwsgi-sdists/2.0.29/uwsgi-2.0.29.tar.gz"
if [ ! -f "$sdist" ]; then
  "$py311" -m pip download -q --no-deps --no-binary :all: -d "$work" uwsgi==2.0.29
  sdist="$work/uwsgi-2.0.29.tar.gz"
fi
tar -xzf "$sdist" -C "$work"
tree="$work/uwsgi-2.0.29"
export XDG_CACHE_HOME="$work/cache"
"$bin" apply -q "$tree" --python "$python" --manylinux-root "$work/root"
(cd "$tree" && env -u UWSGI_PROFILE CPUCOUNT=2 PIP_NO_INDEX=1 \
   PIP_FIND_LINKS="$cache/downloads/frontend-tools" \
   "$python" -m pip wheel -q --use-pep517 --no-deps -w "$work/built" . >"$work/build.log" 2>&1) \
  || { tail -40 "$work/build.log"; exit 1; }
wheel="$(ls "$work"/built/*.whl)"
echo "wheel: $(basename "$wheel"), $(du -k "$wheel" | cut -f1) KiB"
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
testzip() { "$python" -c 'import sys, zipfile; assert zipfile.ZipFile(sys.argv[1]).testzip() is None' "$1"; }
bundle() { rm -rf "$work/out"; "$bin" bundle "$wheel" -w "$work/out" --python "$python"; }
bundle >/dev/null 2>&1 # the probe cached, as in a build after `apply`
bundled="$work/bundled/$(basename "$wheel")"
mkdir -p "$work/bundled" && cp "$work/out/$(basename "$wheel")" "$bundled"
install() { rm -rf "$work/venv"; "$python" -m venv "$work/venv" && "$work/venv/bin/python" -m pip install -q --no-deps --no-index "$bundled"; }
verify() { "$bin" verify --wheel "$bundled" --python "$python" -q; }
verifypip() { "$bin" verify --wheel "$bundled" --python "$python" -q --installer pip; }
: >"$work/t"
for i in $(seq "$runs"); do
  echo "testzip $(ms testzip "$wheel")" >>"$work/t"
  echo "bundle $(ms bundle)" >>"$work/t"
  echo "install $(ms install)" >>"$work/t"
  echo "verify $(ms verify)" >>"$work/t"
  echo "verifypip $(ms verifypip)" >>"$work/t"
done
m() { grep "^$1 " "$work/t" | cut -d' ' -f2 | median; }
all() { grep "^$1 " "$work/t" | cut -d' ' -f2 | tr '\n' ' '; }
echo "$runs runs each, alternating, milliseconds (each run; median):"
for what in testzip bundle install verify verifypip; do printf '  %-9s %s; %s\n' "$what" "$(all $what)" "$(m $what)"; done
awk -v b="$(m bundle)" -v t="$(m testzip)" -v v="$(m verify)" -v i="$(m install)" -v p="$(m verifypip)" 'BEGIN {
  printf "bundle / testzip:              %.2fx (target <= 2)\n", b / t
  printf "verify --wheel / venv + pip:   %.2fx (target <= 0.3)\n", v / i
  printf "verify --wheel --installer pip / venv + pip: %.2fx (for reference)\n", p / i }'
