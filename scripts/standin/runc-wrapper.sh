#!/bin/sh
# An OCI runtime for podman, named `runc` (podman picks runtime behaviour by that name), that
# runs /usr/sbin/runc without resource limits. The sandbox this project is tested in refuses
# setrlimit inside a container: runc then stops with `error setting rlimits for ready process`
# (create, run) or `error setting rlimit type 7: operation not permitted` (exec). Podman hands
# runc the limits in <bundle>/config.json (`--bundle DIR`) and, for exec, in a process file
# (`--process FILE`): both lose their `rlimits` here. Installed by scripts/standin/build.sh
# into its cache's bin/ and named in the containers.conf next to it (CONTAINERS_CONF).
set -eu
strip_rlimits() { # FILE JQ-PATH
    [ -f "$1" ] || return 0
    jq "del($2)" "$1" > "$1.norlimits" && mv -f "$1.norlimits" "$1"
}
previous=""
for argument in "$@"; do
    case "$previous" in
        --bundle | -bundle | -b) strip_rlimits "$argument/config.json" .process.rlimits ;;
        --process | -process | -p) strip_rlimits "$argument" .rlimits ;;
    esac
    case "$argument" in
        --bundle=* | -bundle=*) strip_rlimits "${argument#*=}/config.json" .process.rlimits ;;
        --process=* | -process=*) strip_rlimits "${argument#*=}" .rlimits ;;
    esac
    previous=$argument
done
exec /usr/sbin/runc "$@"
