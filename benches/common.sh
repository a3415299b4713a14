# Shared set-up of the shell benchmarks (sourced): a release binary, a work folder removed on
# exit, a static-only copy of pyenv CPython 3.12 ($python) and timing helpers.
# Expects $runs to be set by the caller.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/patch_uwsgi"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
py312="$HOME/.pyenv/versions/3.12.1/bin/python3.12"
python="$("$py312" "$repo/tests/support/make_static_prefix.py" "$work" cpython-3.12.1)"
# LIBPL/LIBRARY of a real interpreter: where its static archive is.
archive_of() { "$1" -c "import sysconfig as s; print(s.get_config_var('LIBPL') + '/' + s.get_config_var('LIBRARY'))"; }
best() { sort -n | head -n1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Milliseconds one command takes, its output discarded.
t() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
