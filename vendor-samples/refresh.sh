#!/usr/bin/env bash
# Re-create vendor-samples/<version>/ from the uWSGI sdists on PyPI.
# Usage: vendor-samples/refresh.sh [VERSION...]   (default: every 2.0.x from 2.0.17.1 on)
# Prints one Markdown table row per version (version, sdist, sha256) for README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
if [ $# -eq 0 ]; then
  # Every 2.0.x release PyPI lists, from 2.0.17.1 up.
  set -- $("$python" -m pip index versions uwsgi 2>/dev/null | sed -n 's/^Available versions: //p' | tr ',' '\n' | tr -d ' ' |
    grep -E '^2\.0\.' | sort -V | awk '$0=="2.0.17.1"{on=1} on')
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for version in "$@"; do
  mkdir -p "$work/$version"
  "$python" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$work/$version" "uwsgi==$version" >/dev/null 2>&1 ||
    "$python" -m pip download -q --no-deps --no-binary :all: -d "$work/$version" "uwsgi==$version" >/dev/null
  sdist="$(ls "$work/$version"/*.tar.gz)"
  mkdir "$work/$version/x"
  tar -xzf "$sdist" -C "$work/$version/x"
  # Some sdists (2.0.19, 2.0.19.1) have no top-level folder.
  src="$(dirname "$(find "$work/$version/x" -maxdepth 2 -name uwsgiconfig.py | head -n1)")"
  dest="$here/$version"
  rm -rf "$dest"
  mkdir -p "$dest/plugins/python"
  cp "$src/uwsgiconfig.py" "$dest/uwsgiconfig.py"
  cp "$src/plugins/python/uwsgiplugin.py" "$dest/plugins/python/uwsgiplugin.py"
  printf '| %s | `%s` | `%s` |\n' "$version" "$(basename "$sdist")" "$(sha256sum "$sdist" | cut -d' ' -f1)"
done
