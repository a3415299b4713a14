#!/usr/bin/env bash
# The published crate's own tests, from the .crate file: `cargo package` as a release would
# make it, unpacked outside the clone, then its lib and doc tests (the README's example is one)
# run there. Fails when the package leaves out a file those tests read. Integration tests
# (tests/) need the network, CPython builds and compilers and are not part of the package's
# promise; .ci/run runs them from the clone.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
target="${CARGO_TARGET_DIR:-$repo/target}"
# --allow-dirty only for a local try on uncommitted work (PACKAGE_TEST_DIRTY=1); CI packages
# the clean clone.
cargo package --locked --no-verify --quiet ${PACKAGE_TEST_DIRTY:+--allow-dirty}
crate="$target/package/patch-uwsgi-$version.crate"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xzf "$crate" -C "$work"
cd "$work/patch-uwsgi-$version"
# The same target folder: the dependencies built for the clone's tests are reused.
export CARGO_TARGET_DIR="$target"
cargo test --locked --lib --quiet
cargo test --locked --doc --quiet
echo "package-test: lib and doc tests of $(basename "$crate") passed"
