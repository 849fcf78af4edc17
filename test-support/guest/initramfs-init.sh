#!/bin/sh
# /init of the guest's initramfs (stage 1). Only busybox and the few modules needed to reach the
# root are here: it mounts the host's "/" (virtiofs tag "hostroot") read-only under a tmpfs
# overlay, so the guest can write anywhere without touching the host, then hands over to stage 2
# (guest-init.sh, read from the project tree through that root; its path is on the kernel
# command line as crib.init=).
B=/bin/busybox
die() { echo "crib-guest stage 1: $*"; echo o > /proc/sysrq-trigger; $B sleep 10; }
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
for m in $($B cat /modules); do $B insmod "/mods/$m.ko" || die "insmod $m failed"; done
INIT=
for x in $($B cat /proc/cmdline); do case $x in crib.init=*) INIT=${x#crib.init=};; esac; done
[ -n "$INIT" ] || die "no crib.init= on the kernel command line"
$B mount -t virtiofs -o ro hostroot /host || die "virtiofs mount of the host root failed"
$B mount -t tmpfs -o mode=755 rootrw /rw && $B mkdir -p /rw/upper /rw/work || die "tmpfs for the overlay failed"
$B mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
  die "overlay root failed"
$B mkdir -p /newroot/.host
$B mount --move /host /newroot/.host
$B umount /proc /sys
$B mount --move /dev /newroot/dev
exec $B switch_root /newroot /bin/sh "$INIT"
