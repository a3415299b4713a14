#!/usr/bin/env bash
# Requests per second of uWSGI 2.0.31 serving one small WSGI app, one worker, on 127.0.0.1:
#   static   the wheel users get: `pip wheel` for a static-only copy of pyenv CPython 3.11.7
#            after `patch_uwsgi apply`, `patch_uwsgi bundle`, installed into a venv of Debian's
#            python3.11 and started as venv/bin/uwsgi;
#   shared   the stock tree built by pyenv CPython 3.11.7 itself (`uwsgiconfig.py --build`),
#            linked to its libpython3.11.so: the usual dynamic build.
# wrk (one thread, 8 connections) drives each for SECONDS, alternating, ROUNDS times.
# Usage: benches/requests.sh [SECONDS] [ROUNDS]
# Needs: pyenv CPython 3.11.7 (shared library and static archive), Debian's python3.11, wrk
# (`apt-get install wrk`), the uWSGI sdist and setuptools/wheel from PyPI (or the copies the
# tests cached under target/).
set -euo pipefail
seconds="${1:-10}"
rounds="${2:-3}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
bin="$repo/target/release/patch_uwsgi"
py="$HOME/.pyenv/versions/3.11.7/bin/python3.11"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

sdists="$repo/target/e2e-sdists/2.0.31"
if ! ls "$sdists"/uwsgi-2.0.31.tar.gz >/dev/null 2>&1; then
    python3 -m pip download -q --no-deps --no-binary :all: -d "$sdists" uwsgi==2.0.31
fi
tools="$repo/target/frontend-tools/wheels"
pip_source=()
[ -d "$tools" ] && pip_source=(env PIP_NO_INDEX=1 PIP_FIND_LINKS="$tools")

# static: the bundled wheel in a Debian venv.
static="$("$py" "$repo/tests/support/make_static_prefix.py" "$work" cpython-3.11.7)"
archive="$("$py" -c "import sysconfig as s; print(s.get_config_var('LIBPL') + '/' + s.get_config_var('LIBRARY'))")"
mkdir "$work/static" "$work/dist" "$work/bundled"
tar -xzf "$sdists/uwsgi-2.0.31.tar.gz" -C "$work/static"
"$bin" apply "$work/static/uwsgi-2.0.31" --python "$static" --libpython "$archive" --quiet
(cd "$work/static/uwsgi-2.0.31" && "${pip_source[@]}" UWSGI_PROFILE=pyonly CPUCOUNT=2 \
    "$static" -m pip wheel -q --use-pep517 --no-deps -w "$work/dist" .)
"$bin" bundle "$work"/dist/*.whl -w "$work/bundled" --python "$static" --quiet
/usr/bin/python3.11 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-deps --no-index "$work"/bundled/*.whl

# shared: the stock tree, built by the shared-libpython interpreter.
mkdir "$work/shared"
tar -xzf "$sdists/uwsgi-2.0.31.tar.gz" -C "$work/shared"
(cd "$work/shared/uwsgi-2.0.31" && CPUCOUNT=2 "$py" uwsgiconfig.py --build pyonly >"$work/shared.log" 2>&1)

cat > "$work/app.py" <<'EOF'
import json


def application(environ, start_response):
    body = json.dumps({'path': environ['PATH_INFO'], 'total': sum(range(100))}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
EOF

declare -A programs=([static]="$work/venv/bin/uwsgi" [shared]="$work/shared/uwsgi-2.0.31/uwsgi")
echo "static: $(readelf -d "${programs[static]}" 2>/dev/null | grep -c NEEDED || true) NEEDED entries,"\
     "no libpython; shared: $(readelf -d "${programs[shared]}" | grep -o 'libpython[^]]*')"

rate() {
    local program="$1" port
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$program" --http-socket "127.0.0.1:$port" --master --processes 1 --disable-logging \
        --die-on-term --wsgi-file "$work/app.py" >"$work/log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    wrk -t1 -c8 -d"${seconds}s" "http://127.0.0.1:$port/" | awk '/^Requests\/sec:/ {print $2}'
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
}

declare -A results=([static]="" [shared]="")
for round in $(seq "$rounds"); do
    for name in static shared; do
        r="$(rate "${programs[$name]}")"
        results[$name]+="$r "
        echo "round $round: $name $r requests/s"
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median of $rounds rounds of ${seconds} s, requests/s:"
for name in static shared; do
    echo "  $name: $(echo "${results[$name]}" | median)"
done
