# Sourced by build.sh (the manylinux stand-in) and build-musl.sh (the musllinux one): what
# both do the same way. The sourcing script sets STANDIN_NAME, SCRIPT_PATH, CACHE_DIR, SUITE
# and IMAGE_REPO first, defines build_root and import_image, then calls standin_main. This
# file is part of both cache keys.

die() { echo "$STANDIN_NAME: error: $*" >&2; exit 1; }
log() { echo "$STANDIN_NAME: $*" >&2; }

# ---------------------------------------------------------------------------
# Mirror and cache key
# ---------------------------------------------------------------------------
# The Debian mirror: STANDIN_MIRROR if set, else the first ".../debian" URI in
# the host's apt sources (one-line or deb822 format), else deb.debian.org.
detect_mirror() {
    local m=""
    if [ -n "${STANDIN_MIRROR:-}" ]; then
        echo "${STANDIN_MIRROR%/}"; return
    fi
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
            /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | sed -nE 's#^\s*(deb\s+(\[[^]]*\]\s+)?|URIs:\s*)(https?://\S+/debian)/?(\s.*)?$#\3#p' \
        | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(detect_mirror)
COMMON_PATH=$(readlink -f "${BASH_SOURCE[0]}")
KEY=$( { cat "$SCRIPT_PATH" "$COMMON_PATH"; echo "suite=$SUITE"; echo "mirror=$MIRROR"; } \
       | sha256sum | cut -c1-16)
IMAGE="$IMAGE_REPO:$KEY"
FINAL="$CACHE_DIR/$KEY"             # complete cache entry (renamed into place)
WORK="$CACHE_DIR/.build-$KEY"       # in-progress build
DL="$CACHE_DIR/downloads"           # verified downloads, shared by all keys
BIN="$CACHE_DIR/bin"                # the podman runtime wrapper

# ---------------------------------------------------------------------------
# Timing helpers: each phase is timed; lines go to stderr and to a file.
# ---------------------------------------------------------------------------
TIMINGS_FILE=""                     # set once the work dir exists
PHASE_NAME=""
PHASE_T0=0
now() { date +%s.%N; }
phase() {                           # phase NAME: end the running phase, start NAME
    phase_end
    PHASE_NAME=$1; PHASE_T0=$(now)
    log "== $PHASE_NAME"
}
phase_end() {
    [ -n "$PHASE_NAME" ] || return 0
    local line
    line=$(awk -v a="$PHASE_T0" -v b="$(now)" -v n="$PHASE_NAME" \
           'BEGIN { printf "%-28s %8.1f s\n", n, b - a }')
    log "timing: $line"
    if [ -n "$TIMINGS_FILE" ]; then echo "$line" >> "$TIMINGS_FILE"; fi
    PHASE_NAME=""
}
T_START=$(now)

# ---------------------------------------------------------------------------
# Host tools: install only what is missing (one apt-get update at most).
# ---------------------------------------------------------------------------
ensure_host_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v podman >/dev/null      || missing+=(podman)
    [ -x /usr/sbin/runc ]             || missing+=(runc)
    command -v xz >/dev/null          || missing+=(xz-utils)
    command -v jq >/dev/null          || missing+=(jq)
    command -v curl >/dev/null        || missing+=(curl)
    command -v unshare >/dev/null     || missing+=(util-linux)
    command -v flock >/dev/null       || missing+=(util-linux)
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
    [ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
    python3 -m pip --version >/dev/null 2>&1  || missing+=(python3-pip)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing host packages: ${missing[*]}"
        # One apt at a time: tests/pipeline.rs builds both stand-ins side by side, and on a
        # fresh machine both find the same tools missing (apt-get would stop on its lock).
        (
            flock 8
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
        ) 8> /var/lock/patch-uwsgi-apt.lock
    fi
}

# ---------------------------------------------------------------------------
# Downloads (cached in $DL, always verified by sha256 before use)
# ---------------------------------------------------------------------------
sha_ok() { echo "$2  $1" | sha256sum -c --status - 2>/dev/null; }

fetch_pinned() {                    # fetch_pinned URL SHA256 -> prints local path
    local url=$1 sha=$2 out
    out="$DL/src/$(basename "$url")"
    if [ -f "$out" ] && sha_ok "$out" "$sha"; then echo "$out"; return; fi
    mkdir -p "$DL/src"
    log "downloading $url"
    curl -fsSL --retry 5 -o "$out.part" "$url"
    sha_ok "$out.part" "$sha" || { rm -f "$out.part"; die "sha256 mismatch for $url"; }
    mv -f "$out.part" "$out"
    echo "$out"
}

# The cached wheel file of a pin ("req sha"), if present and verified.
pinned_wheel() {
    local req sha f name ver
    read -r req sha <<<"$1"
    name=${req%%==*} ver=${req#*==}
    name=${name//-/_}               # wheel file names use the normalized name
    for f in "$DL/wheels/${name}-${ver}-"*.whl; do
        if [ -f "$f" ] && sha_ok "$f" "$sha"; then echo "$f"; return 0; fi
    done
}

# Downloads a set of pinned wheels into $DL/wheels with the host's pip in
# hash-checking mode (pip picks the file whose hash is pinned, e.g. tomli's
# pure wheel rather than a compiled one for the host's Python).
fetch_wheels() {                    # fetch_wheels "req sha" ...
    local entry req sha reqfile need=0
    mkdir -p "$DL/wheels"
    reqfile=$(mktemp)
    for entry in "$@"; do
        read -r req sha <<<"$entry"
        echo "$req --hash=sha256:$sha" >> "$reqfile"
        [ -n "$(pinned_wheel "$entry")" ] || need=1
    done
    if [ "$need" -eq 1 ]; then
        log "downloading wheels: $(cut -d' ' -f1 "$reqfile" | tr '\n' ' ')"
        python3 -m pip download --quiet --no-deps --only-binary :all: \
            --require-hashes -r "$reqfile" -d "$DL/wheels" >&2
    fi
    rm -f "$reqfile"
}

# ---------------------------------------------------------------------------
# Running things inside the root: a private mount namespace (unshare -m) so
# the proc and dev mounts vanish with the process, whatever happens.
# ---------------------------------------------------------------------------
in_root() {                         # in_root ROOT CMD... (runs CMD in chroot)
    local root=$1; shift
    unshare --mount --propagation private -- /bin/bash -c '
        set -e
        r=$1; shift
        mount -t proc proc "$r/proc"
        mount --bind /dev "$r/dev"
        exec chroot "$r" /usr/bin/env -i HOME=/root LC_ALL=C.UTF-8 LANG=C.UTF-8 \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    ' in_root "$root" "$@"
}

# Runs a logged step; on failure shows the end of its log.
logged() {                          # logged LOGFILE CMD...
    local logfile=$1; shift
    if ! "$@" > "$logfile" 2>&1; then
        tail -n 40 "$logfile" >&2
        die "step failed (full log: $logfile)"
    fi
}

# Refuses to delete a tree that still has something mounted below it.
safe_rm_tree() {
    local d=$1
    [ -e "$d" ] || return 0
    if awk -v d="$d" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' \
            /proc/self/mountinfo; then
        die "something is still mounted under $d; not deleting it"
    fi
    rm -rf --one-file-system "$d"
}

# ---------------------------------------------------------------------------
# The script run inside the root (written to ROOT/tmp/standin/inside.sh).
# Mirrors manylinux's build-cpython.sh / finalize.sh / finalize-one.sh steps.

# Tag (cpXY-cpXY) of a CPython version X.Y.Z.
tag_of() { local xy=${1%.*}; echo "cp${xy/./}-cp${xy/./}"; }

# Records what was built, marks the work folder complete and renames it into place: an entry
# without `complete` is never reused.
publish_entry() {
    {
        echo "key=$KEY"; echo "image=$IMAGE"; echo "suite=$SUITE"; echo "mirror=$MIRROR"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } > "$WORK/info.txt"
    touch "$WORK/complete"
    safe_rm_tree "$FINAL"
    mv -T "$WORK" "$FINAL"
    TIMINGS_FILE="$FINAL/timings.txt"
}

# ---------------------------------------------------------------------------
# Podman: import the root as an image; runtime wrapper and containers.conf.
# ---------------------------------------------------------------------------
import_root_image() {               # import_root_image POLICY ARCH
    local changes=(
        --change "ENV AUDITWHEEL_POLICY=$1"
        --change "ENV AUDITWHEEL_ARCH=$2"
        --change "ENV AUDITWHEEL_PLAT=$1_$2"
        --change "ENV LC_ALL=C.UTF-8"
        --change "ENV LANG=C.UTF-8"
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
        --change 'CMD ["/bin/bash"]'
    )
    tar -C "$FINAL/root" --numeric-owner -c . \
        | podman import --quiet "${changes[@]}" - "$IMAGE" >/dev/null
}

# Earlier cache entries (other keys) and their images: removed after a
# successful cold build, unless STANDIN_KEEP_OLD=1.
prune_old_entries() {
    local d tag
    [ "${STANDIN_KEEP_OLD:-0}" = 1 ] && return 0
    for d in "$CACHE_DIR"/*; do
        [ -d "$d" ] || continue
        case "$(basename "$d")" in
            "$KEY") ;;
            [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])
                log "removing old cache entry $d"; safe_rm_tree "$d" ;;
        esac
    done
    podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null \
        | while read -r tag; do
            if [ "${tag%:*}" = "$IMAGE_REPO" ] && [ "$tag" != "$IMAGE" ]; then
                log "removing old image $tag"; podman rmi "$tag" >/dev/null || true
            fi
        done || true
}

# The podman OCI runtime that drops the resource limits this sandbox refuses
# (scripts/standin/runc-wrapper.sh, a file of its own so that changing it does not
# change the image key), the containers.conf that names it, and a README.
write_runtime_wrapper() {           # write_runtime_wrapper README-LINES
    local tmp
    mkdir -p "$BIN"
    tmp=$(mktemp "$BIN/.runc.XXXXXX")
    cp "$(dirname "$SCRIPT_PATH")/runc-wrapper.sh" "$tmp"
    chmod 755 "$tmp"
    mv -f "$tmp" "$BIN/runc"

    tmp=$(mktemp "$CACHE_DIR/.containers.conf.XXXXXX")
    cat > "$tmp" <<EOF
# Use with: CONTAINERS_CONF=$CACHE_DIR/containers.conf podman run ...
[engine]
runtime = "runc"

[engine.runtimes]
runc = ["$BIN/runc"]
EOF
    mv -f "$tmp" "$CACHE_DIR/containers.conf"

    tmp=$(mktemp "$CACHE_DIR/.README.XXXXXX")
    cat > "$tmp" <<EOF
$STANDIN_NAME: a stand-in built by patch-uwsgi scripts/standin/$STANDIN_NAME

image:   $IMAGE
root:    $FINAL/root
timings: $FINAL/timings.txt
$1

Run (either form):
  podman run --rm --runtime $BIN/runc $IMAGE /opt/python/cp311-cp311/bin/python -c 'import sys; print(sys.version)'
  CONTAINERS_CONF=$CACHE_DIR/containers.conf podman run --rm $IMAGE ...
EOF
    mv -f "$tmp" "$CACHE_DIR/README.txt"
}

# The answer to --status: an entry is reused only when its `complete` mark is there; a
# work folder (.build-*) or an entry without the mark is what a killed run leaves, and the
# next run deletes it and builds again.
standin_status() {
    local d stale=()
    for d in "$CACHE_DIR"/.build-*; do
        if [ -e "$d" ]; then stale+=("$d"); fi
    done
    if [ -f "$FINAL/complete" ]; then
        echo "complete $FINAL"
        exit 0
    fi
    if [ -e "$FINAL" ]; then stale+=("$FINAL"); fi
    echo "not built: $KEY (a run builds it${stale:+; left by an interrupted run, deleted first: ${stale[*]}})"
    exit 1
}

# Reuses the complete entry of this key or builds it (build_root, defined by the sourcing
# script, fills $WORK and calls publish_entry), imports the image when podman lacks it, and
# prints the image name as the last line on stdout.
standin_main() {                    # standin_main README-LINES
    local d total
    if [ "$STANDIN_STATUS" = 1 ]; then
        standin_status
        return
    fi
    ensure_host_tools
    mkdir -p "$CACHE_DIR"
    # One run at a time per cache directory.
    exec 9> "$CACHE_DIR/.lock"
    flock 9

    log "key $KEY (suite $SUITE, mirror $MIRROR), cache $CACHE_DIR"
    if [ -f "$FINAL/complete" ]; then
        log "reusing $FINAL"
        TIMINGS_FILE=""             # keep the cold build's timings file as is
    else
        # Leftovers of interrupted builds (any key) are never reused.
        for d in "$CACHE_DIR"/.build-*; do
            if [ -e "$d" ]; then log "removing stale $d"; safe_rm_tree "$d"; fi
        done
        build_root
        prune_old_entries
    fi

    if ! podman image exists "$IMAGE"; then
        phase "podman import"
        import_image
    fi
    write_runtime_wrapper "$1"
    phase_end

    total=$(awk -v a="$T_START" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    log "total ${total} s; see $CACHE_DIR/README.txt"
    if [ -n "$TIMINGS_FILE" ]; then printf '%-28s %8s s\n' total "$total" >> "$TIMINGS_FILE"; fi
    echo "$IMAGE"
}
