#!/usr/bin/env bash
# The real pipeline: cibuildwheel (pinned) runs examples/uwsgi-wheels, with the uWSGI 2.0.31
# sdist vendored as its ./uwsgi, in the manylinux stand-in (scripts/standin/build.sh: Debian
# bullseye, CPython 3.9/3.11/3.13 compiled from source the manylinux way, non-PIC, archives
# only in the tarball; 3.13 compiled by clang as manylinux i686/ppc64le/s390x compile theirs)
# or, with PIPELINE_LIBC=musl, in the musllinux stand-in (scripts/standin/build-musl.sh:
# musl 1.2.5, CPython 3.11/3.13 compiled by clang) through podman, and leaves the repaired
# wheels in OUTDIR. The example's
# before-build, repair-wheel-command and test-command run as the docs give them; patch-uwsgi
# comes from the wheel scripts/build-wheels.sh builds, through a local find-links folder
# (the container gets no index: PIP_NO_INDEX, everything it installs is in that folder).
#
# usage: scripts/pipeline.sh OUTDIR
#   PATCH_UWSGI_CACHE    where the stand-in and downloads are kept (default
#                        ${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline)
#   PIPELINE_LIBC        glibc (default): manylinux_x86_64; musl: musllinux_x86_64
#   PIPELINE_BUILD       cibuildwheel identifiers (default: every Python of the stand-in)
#   PIPELINE_VARIANT     docs (default): the example as the docs give it;
#                        without-apply: before-build only installs the tool (the control: the
#                          link must fail as users saw it);
#                        without-bundle: repair-wheel-command is a plain `auditwheel repair`,
#                          no test-command (the control for users' machines);
#                        stdlib: `patch_uwsgi bundle --stdlib` in repair-wheel-command.
#   PIPELINE_IMAGE       an image already built by the stand-in's script (skips it)
set -euo pipefail
out=${1:?usage: scripts/pipeline.sh OUTDIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${PATCH_UWSGI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/patch-uwsgi-pipeline}
mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)

CIBUILDWHEEL_VERSION=4.3.5
UWSGI_VERSION=2.0.31
UWSGI_SHA256=e8f8b350ccc106ff93a65247b9136f529c14bf96b936ac5b264c6ff9d0c76257

step() { printf '== %s (%s)\n' "$1" "$(date +%T)" >&2; }
started=$(date +%s)

case ${PIPELINE_LIBC:-glibc} in
glibc)
    kind=manylinux standin=build.sh standin_cache=$cache/standin
    tool_target=x86_64-unknown-linux-gnu minors="3.9 3.11 3.13" ;;
musl)
    kind=musllinux standin=build-musl.sh standin_cache=$cache/standin-musl
    tool_target=x86_64-unknown-linux-musl minors="3.11 3.13" ;;
*)
    echo "pipeline: PIPELINE_LIBC=${PIPELINE_LIBC} is not one of glibc, musl" >&2
    exit 2 ;;
esac

step "$kind stand-in"
if [ -n "${PIPELINE_IMAGE:-}" ]; then
    image=$PIPELINE_IMAGE
else
    image=$("$repo/scripts/standin/$standin" "$standin_cache" | tail -n 1)
fi
export CONTAINERS_CONF=$standin_cache/containers.conf

# The shared parts of the cache (cibuildwheel's venv, the downloads, the tool's wheel and the
# tools that build it): one pipeline at a time, up to the cibuildwheel run itself
# (tests/pipeline.rs runs the manylinux and the musllinux pipelines side by side).
exec 7>"$cache/.pipeline.lock"
flock 7

step "cibuildwheel $CIBUILDWHEEL_VERSION"
tools=$cache/cibuildwheel-$CIBUILDWHEEL_VERSION
if [ ! -x "$tools/bin/cibuildwheel" ]; then
    rm -rf "$tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install -q "cibuildwheel==$CIBUILDWHEEL_VERSION"
fi

step "the container's find-links folder"
work=$(mktemp -d "${TMPDIR:-/tmp}/patch-uwsgi-pipeline.XXXXXX")
trap 'rm -rf "$work"' EXIT
project=$work/project
cp -r "$repo/examples/uwsgi-wheels" "$project"
links=$project/wheelhouse
mkdir -p "$links"
# patch-uwsgi itself, as its release builds it.
PATCH_UWSGI_WHEEL_TARGETS=$tool_target "$repo/scripts/build-wheels.sh" "$work/tool" >&2
cp "$work"/tool/patch_uwsgi-*"$kind"*x86_64*.whl "$links/"
# What the build backend and cibuildwheel's test step install, at cibuildwheel's own pins.
constraints=$("$tools/bin/python" -c 'import cibuildwheel, os; print(os.path.join(os.path.dirname(cibuildwheel.__file__), "resources"))')
downloads=$cache/downloads
# Each minor's own pip resolves (markers such as python_version are its own): pyenv's.
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
for minor in $minors; do
    python=$(ls -d "$pyenv_root"/versions/"$minor".*/bin/python"$minor" 2>/dev/null | tail -n 1)
    if [ -z "$python" ]; then
        echo "pipeline: no CPython $minor under $pyenv_root/versions (pyenv install $minor)" >&2
        exit 2
    fi
    "$python" -m pip download -q --only-binary :all: -d "$downloads" \
        -c "$constraints/constraints-python${minor/./}.txt" \
        virtualenv "setuptools>=64" wheel
done
cp "$downloads"/*.whl "$links/"

step "uWSGI $UWSGI_VERSION from PyPI"
sdist=$downloads/uwsgi-$UWSGI_VERSION.tar.gz
if [ ! -f "$sdist" ]; then
    python3 -m pip download -q --no-deps --no-binary :all: -d "$downloads" "uwsgi==$UWSGI_VERSION"
fi
echo "$UWSGI_SHA256  $sdist" | sha256sum -c --quiet -
tar -xzf "$sdist" -C "$work"
mv "$work/uwsgi-$UWSGI_VERSION" "$project/uwsgi"

flock -u 7

step "cibuildwheel"
export CIBW_PLATFORM=linux CIBW_ARCHS=x86_64
export CIBW_CONTAINER_ENGINE=podman
if [ "$kind" = manylinux ]; then
    export CIBW_MANYLINUX_X86_64_IMAGE=$image
else
    export CIBW_MUSLLINUX_X86_64_IMAGE=$image
fi
default_build=""
for minor in $minors; do default_build+="cp${minor/./}-${kind}_x86_64 "; done
export CIBW_BUILD=${PIPELINE_BUILD:-$default_build}
export CIBW_ENVIRONMENT_LINUX="CPUCOUNT=2 PIP_NO_INDEX=1 PIP_FIND_LINKS=/project/wheelhouse"
case ${PIPELINE_VARIANT:-docs} in
docs) ;;
without-apply)
    # The example without the tool: the same build, as users ran it before.
    export CIBW_BEFORE_BUILD="pip install 'patch-uwsgi==0.1.*'" ;;
without-bundle)
    # Linked by patch-uwsgi, repaired as any wheel is, but no bundle: what users' Pythons then
    # lack is the point, so the example's own test (which would say so) is left out.
    export CIBW_REPAIR_WHEEL_COMMAND="auditwheel repair -w {dest_dir} {wheel}"
    export CIBW_TEST_SKIP="*" ;;
stdlib)
    # The README's variant for machines with no Python at all.
    export CIBW_REPAIR_WHEEL_COMMAND="rm -rf /tmp/bundled && mkdir /tmp/bundled && patch_uwsgi bundle --stdlib {wheel} -w /tmp/bundled && auditwheel repair -w {dest_dir} /tmp/bundled/*.whl" ;;
*)
    echo "pipeline: PIPELINE_VARIANT=${PIPELINE_VARIANT} is not one of docs, without-apply, without-bundle, stdlib" >&2
    exit 2 ;;
esac
(cd "$project" && "$tools/bin/cibuildwheel" --output-dir "$out" .)

step "done in $(( $(date +%s) - started )) s"
ls -l "$out" >&2
