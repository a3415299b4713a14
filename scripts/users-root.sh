#!/usr/bin/env bash
# A user's machine for the pipeline's wheels: a minimal Debian root of SUITE with that
# distribution's own PYTHON (a build of the same minor other than the one the wheel embeds) and
# its venv module, made by debootstrap once and cached; prints the root's path.
#
# usage: scripts/users-root.sh SUITE PYTHON     e.g. bookworm python3.11
#   PATCH_UWSGI_CACHE  cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline)
# Needs root (debootstrap); installs debootstrap when missing.
set -euo pipefail
suite=${1:?usage: scripts/users-root.sh SUITE PYTHON}
python=${2:?usage: scripts/users-root.sh SUITE PYTHON}
cache=${PATCH_UWSGI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline}
packages="$python,python3-venv,ca-certificates"
root=$cache/roots/$suite-$python
if [ -x "$root/usr/bin/$python" ] && [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
mirror=$(sed -nE 's#^\s*(deb\s+(\[[^]]*\]\s+)?|URIs:\s*)(https?://\S+/debian)/?(\s.*)?$#\3#p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
building=$root.building
rm -rf "$building" "$root"
mkdir -p "$(dirname "$root")"
debootstrap --variant=minbase --include="$packages" "$suite" "$building" "$mirror" >&2
touch "$building/.complete"
mv "$building" "$root"
echo "$root"
