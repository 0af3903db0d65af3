#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# with_bwrap.sh SANITIZE COMMAND [ARG]...
#
# Runs an integration test driver (COMMAND) with every host started by the
# bubblewrap launcher: NIFKIT_POLICY names a best-effort policy whose
# launcher is "bwrap", and NIFKIT_TEST_LAUNCHER tells the driver which
# sandboxing launcher is in use. SANITIZE is the build's b_sanitize. Skips
# (77), saying why, where bwrap is missing or cannot create its namespaces
# here, and in sanitized builds, whose runtimes start with system calls the
# host's seccomp filter denies.
set -u
here=$(dirname "$0")
sanitize=$1
shift

if [ "$sanitize" != none ] && [ -n "$sanitize" ]; then
        echo "SKIP: built with -Db_sanitize=$sanitize: the sanitizer runtime's start-up calls are denied by the host's seccomp filter"
        exit 77
fi

if ! command -v bwrap >/dev/null 2>&1; then
        echo "SKIP: bubblewrap (bwrap) is not installed"
        exit 77
fi
# The launcher runs bwrap as the sandbox's outside id: nobody when root.
probe="bwrap --unshare-all --unshare-user --ro-bind / / true"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
        probe="setpriv --reuid ${NIFKIT_SANDBOX_UID:-65534} --regid ${NIFKIT_SANDBOX_GID:-65534} --clear-groups $probe"
fi
if ! why=$($probe 2>&1); then
        echo "SKIP: bwrap cannot create its namespaces on this machine: $why"
        exit 77
fi

export NIFKIT_POLICY="$here/best-effort.json"
export NIFKIT_TEST_LAUNCHER=bwrap
export NIFKIT_UNSANDBOXED_DEVELOPMENT=0
exec "$@"
