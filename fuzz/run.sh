#!/bin/sh
# Fuzz the recipe functions for a bounded time: fuzz/run.sh [SECONDS] (default 300).
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz). Seeds the corpus with
# both files of every vendored uWSGI release (first byte: 0 uwsgiconfig.py, 1 uwsgiplugin.py).
# A crash is saved under fuzz/artifacts/recipes/; turn it into a regression test in
# tests/properties.rs.
set -eu
seconds=${1:-300}
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/corpus/recipes"
mkdir -p "$corpus"
for tree in "$here"/../vendor-samples/*/; do
    [ -f "$tree/uwsgiconfig.py" ] || continue
    name=$(basename "$tree")
    { printf '\000'; cat "$tree/uwsgiconfig.py"; } > "$corpus/config-$name"
    { printf '\001'; cat "$tree/plugins/python/uwsgiplugin.py"; } > "$corpus/plugin-$name"
done
cd "$here"
exec cargo +nightly fuzz run --sanitizer none recipes "$corpus" -- -max_total_time="$seconds" -max_len=131072 -print_final_stats=1
