#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the VM tests' initramfs: busybox-static with its applets, the guest
# /init, and the kernel modules that 9p over virtio and overlayfs need (with
# their dependencies, in load order). Nothing else: the guest reads the
# machine's own root filesystem read-only over 9p, so erl, the Erlang
# libraries and the build directory are the real ones.
#
#   mkinitramfs.sh OUTPUT.cpio.gz MODULES_DIR INIT
#
# MODULES_DIR is /lib/modules/<version> of the kernel that will boot.
# Exit status 77 means "cannot build here" (busybox-static or cpio missing);
# the reason is on stderr.
set -eu

if [ $# -ne 3 ]; then
        echo "usage: $0 OUTPUT.cpio.gz MODULES_DIR INIT" >&2
        exit 64
fi
out=$1
moddir=$2
init=$3

# The initramfs has no libc: only a statically linked busybox runs there.
busybox=
for b in /bin/busybox /usr/bin/busybox; do
        if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then
                busybox=$b
                break
        fi
done
if [ -z "$busybox" ]; then
        echo "SKIP: no statically linked busybox (install busybox-static)" >&2
        exit 77
fi
if ! command -v cpio >/dev/null 2>&1; then
        echo "SKIP: cpio is not installed" >&2
        exit 77
fi
if [ ! -f "$moddir/modules.dep" ]; then
        echo "SKIP: $moddir/modules.dep is missing (no modules for the guest kernel)" >&2
        exit 77
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/proc" "$root/sys" "$root/dev" \
        "$root/host" "$root/newroot" "$root/lib/modules" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cp "$init" "$root/init"
chmod 0755 "$root/init"

# Resolve dependencies through modules.dep: a module's line lists what it
# needs, the last entry being the one to load first (as modprobe does).
# Each module is appended after its dependencies, once.
order=$root/lib/modules/order
: >"$order"
add_module() {
        local rel deps dep
        rel=$1
        grep -qxF "$rel" "$order" && return 0
        deps=$(awk -v m="$rel:" '$1 == m { for (i = NF; i >= 2; i--) print $i }' "$moddir/modules.dep")
        for dep in $deps; do
                add_module "$dep"
        done
        echo "$rel" >>"$order"
}
find_module() {
        awk -v n="$1" -F: '{ f = $1; sub(".*/", "", f); sub("\\.ko(\\.(xz|zst|gz))?$", "", f)
                             if (f == n) { print $1; exit } }' "$moddir/modules.dep"
}
# A module that is built into this kernel has no line: nothing to load.
for name in virtio_pci 9pnet_virtio 9p overlay; do
        rel=$(find_module "$name")
        [ -n "$rel" ] && add_module "$rel"
done

# busybox's insmod reads plain ELF objects; decompress where the kernel
# package ships them compressed.
staged=$root/lib/modules/order.staged
: >"$staged"
while read -r rel; do
        base=$(basename "$rel")
        case "$base" in
        *.ko.xz) xz -dc "$moddir/$rel" >"$root/lib/modules/${base%.xz}"; base=${base%.xz} ;;
        *.ko.zst) zstd -qdc "$moddir/$rel" >"$root/lib/modules/${base%.zst}"; base=${base%.zst} ;;
        *.ko.gz) gzip -dc "$moddir/$rel" >"$root/lib/modules/${base%.gz}"; base=${base%.gz} ;;
        *) cp "$moddir/$rel" "$root/lib/modules/$base" ;;
        esac
        echo "$base" >>"$staged"
done <"$order"
mv "$staged" "$order"

tmpout=$out.tmp.$$
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$tmpout"
mv "$tmpout" "$out"
