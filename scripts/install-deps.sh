#!/bin/sh
# Installs every Debian package nifkit needs to build, test and run its demo.
# Idempotent: apt-get skips what is already installed.
set -eu

packages="
  gcc pkg-config meson ninja-build python3
  erlang-nox erlang-dev
  erlang-jiffy erlang-p1-yaml erlang-p1-xml erlang-p1-stringprep
  erlang-p1-tls erlang-p1-zlib erlang-p1-iconv erlang-p1-mqtree erlang-p1-xmpp erlang-bitcask
  binutils
  libcmocka-dev libjansson-dev libseccomp-dev libcap-ng-dev
  libnl-3-dev libnl-route-3-dev bubblewrap
  clang libclang-rt-14-dev
  qemu-system-x86 linux-image-amd64 busybox-static cpio
  python3-prometheus-client
  rebar3 elixir
"
# python3-prometheus-client: the Prometheus project's own reader of the text
# exposition format, which checks `nifkit status --format prometheus` in the
# tests as a scraper would read it.
# rebar3, elixir: a real rebar3 release and a real mix release, which the
# tests wrap with nifkit wrap-release and boot with their own start scripts.

if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
                exec sudo "$0" "$@"
        fi
        echo "install-deps: run as root (apt-get needs it)" >&2
        exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # the list is split on purpose
apt-get install -y -q --no-install-recommends $packages
