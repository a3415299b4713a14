#!/usr/bin/env bash
# A user's machine for the pipeline's wheels: a minimal Debian root of SUITE with that
# distribution's own PYTHON (a build of the same minor other than the one the wheel embeds) and
# its venv module, made by debootstrap once and cached; prints the root's path. PYTHON `none`
# makes a root with no Python at all (debootstrap's minbase: the C library, coreutils, apt).
#
# usage: scripts/users-root.sh SUITE PYTHON [PACKAGES]   e.g. bookworm python3.11, trixie none,
#        sid python3.14 python3.14-dev,gcc,libc6-dev   (PACKAGES: more, comma-separated)
#   PATCH_UWSGI_CACHE  cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline)
# Needs root (debootstrap); installs debootstrap when missing.
set -euo pipefail
suite=${1:?usage: scripts/users-root.sh SUITE PYTHON}
python=${2:?usage: scripts/users-root.sh SUITE PYTHON}
extra=${3:-}
cache=${PATCH_UWSGI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline}
if [ "$python" = none ]; then
    packages=ca-certificates
else
    packages="$python,python3-venv,ca-certificates"
fi
root=$cache/roots/$suite-$python
if [ -n "$extra" ]; then
    packages="$packages,$extra"
    root=$root-$(printf '%s' "$extra" | sha256sum | cut -c1-12)
fi
if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    # One apt at a time (the stand-in scripts take the same lock).
    (
        flock 8
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    ) 8> /var/lock/patch-uwsgi-apt.lock
fi
mirror=$(sed -nE 's#^\s*(deb\s+(\[[^]]*\]\s+)?|URIs:\s*)(https?://\S+/debian)/?(\s.*)?$#\3#p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
building=$root.building
rm -rf "$building" "$root"
mkdir -p "$(dirname "$root")"
debootstrap --variant=minbase --include="$packages" "$suite" "$building" "$mirror" >&2
if [ "$python" = none ] && ls "$building"/usr/bin/python* >/dev/null 2>&1; then
    echo "users-root: $suite's minbase has a Python ($(ls "$building"/usr/bin/python*))" >&2
    exit 1
fi
touch "$building/.complete"
mv "$building" "$root"
echo "$root"
