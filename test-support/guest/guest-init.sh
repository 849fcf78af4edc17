#!/bin/sh
# PID 1 of the test guest (stage 2), started by initramfs-init.sh once the root is the host's "/"
# (read-only, virtiofs) under a tmpfs overlay. It makes the node the tests need — a pure
# cgroup v2 hierarchy with every controller enabled, /tmp on a real ext4 disk, the guest
# kernel's modules — runs the command guest.sh prepared in the run directory, reports its exit
# code on the second serial port and powers off.
#
# The run directory (crib.run= on the kernel command line) holds: cmd (a bash script: env, cd,
# exec), workdir (the host dir cmd runs in), out (a host dir shared read-write over virtiofs, tag
# "out", or empty) and moddir (the guest kernel's modules on the host).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
STATUS=/dev/ttyS1
report() { echo "$1" > $STATUS; }
halt() { sync; busybox poweroff -f 2>/dev/null || echo o > /proc/sysrq-trigger; sleep 10; }
fail() { echo "crib-guest: $*"; report "error=$*"; halt; }

mount -t proc proc /proc || fail "mount /proc"
RUN=
for x in $(cat /proc/cmdline); do case $x in crib.run=*) RUN=${x#crib.run=};; esac; done
[ -d "$RUN" ] || fail "run directory '$RUN' not found"
mount -t sysfs sysfs /sys || fail "mount /sys"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail "mount /dev/pts"
mount -t tmpfs -o mode=1777 shm /dev/shm || fail "mount /dev/shm"
mount -t mqueue mqueue /dev/mqueue || fail "mount /dev/mqueue"
# AppArmor and BPF: securityfs shows AppArmor's state; bpffs is where BPF objects get pinned.
mount -t securityfs securityfs /sys/kernel/security || fail "mount securityfs"
mount -t bpf bpf /sys/fs/bpf || fail "mount bpffs"
mount -t tmpfs -o mode=755 run /run && mkdir -p /run/lock || fail "mount /run"

# SELinux (guest.sh --lsm selinux booted the kernel with security=selinux): load the host's
# installed policy, permissive — labels are computed, set and reported, nothing is denied (the
# virtiofs root carries no labels). This guest's own config, not the host's, says so.
if [ "$(cat "$RUN/lsm" 2>/dev/null)" = selinux ]; then
  mount -t selinuxfs selinuxfs /sys/fs/selinux || fail "mount selinuxfs"
  printf 'SELINUX=permissive\nSELINUXTYPE=default\n' > /etc/selinux/config || fail "write /etc/selinux/config"
  load_policy -i >/dev/null 2>&1 || fail "load the SELinux policy"
  [ "$(cat /sys/fs/selinux/enforce)" = 0 ] || fail "SELinux is not permissive"
  # Debian's policy has no container module: the container_t and container_file_t its
  # lxc_contexts names are not defined (a label naming them is refused). This node's container
  # contexts are the virt module's sandbox types instead, as its admin would configure them.
  printf 'process = "system_u:system_r:svirt_t:s0"\nfile = "system_u:object_r:svirt_image_t:s0"\n' \
    > /etc/selinux/default/contexts/lxc_contexts || fail "write lxc_contexts"
fi

# The node under test: cgroup v1 is disabled on the kernel command line (cgroup_no_v1=all), so
# this is the only hierarchy, as on a kubelet node with the unified layout. nsdelegate and
# memory_recursiveprot are what systemd mounts it with.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || fail "enable cgroup controller $c"
done

# The scratch disk (ext4): overlayfs refuses upper dirs on tmpfs-over-virtiofs, and the tests'
# daemons keep their root, state and image layers under /tmp.
# The command runs in the host's working dir; a checkout under /tmp or /var/tmp (where CI may
# clone) would vanish under the scratch disk, so it is carried across the bind.
WORK=$(cat "$RUN/workdir")
case $WORK in
  /tmp/*|/var/tmp/*) mkdir -p /run/crib-guest-work && mount --bind "$WORK" /run/crib-guest-work ||
    fail "keep the work dir $WORK" ;;
esac
mkdir -p /scratch && mount -t ext4 /dev/vda /scratch || fail "mount the scratch disk"
for d in /tmp /var/tmp; do
  s=/scratch$d; mkdir -p "$s" && chmod 1777 "$s" && mount --bind "$s" "$d" || fail "bind $d"
done
case $WORK in
  /tmp/*|/var/tmp/*) mkdir -p "$WORK" && mount --move /run/crib-guest-work "$WORK" ||
    fail "put the work dir back at $WORK" ;;
esac

# The guest kernel's modules (the host runs another kernel), indexed by busybox's depmod and
# loaded by its modprobe: veth, bridge and nf_tables for pod networks, overlay for container
# roots, loop for disks the device tests hand to containers; the kernel asks for the rest on
# demand (nft's expressions, NAT) through the same tool.
mkdir -p /lib/modules /run/crib-guest && mount --bind "$(cat "$RUN/moddir")" /lib/modules ||
  fail "bind modules"
ln -s /bin/busybox /run/crib-guest/modprobe && echo /run/crib-guest/modprobe > /proc/sys/kernel/modprobe ||
  fail "set the kernel's modprobe"
for m in veth bridge br_netfilter nf_tables overlay loop; do busybox modprobe $m || fail "modprobe $m"; done
ip link set lo up || fail "loopback up"
hostname crib-guest

OUT=$(cat "$RUN/out")
if [ -n "$OUT" ]; then
  mkdir -p "$OUT" && mount -t virtiofs out "$OUT" || fail "mount the out share at $OUT"
fi

report "booted_uptime=$(cut -d' ' -f1 /proc/uptime)"
# Through a pipe, not the serial tty itself: test runners then print plain lines instead of
# redrawing a terminal.
/bin/bash -c 'set -o pipefail; /bin/bash "$1" </dev/null 2>&1 | cat > /dev/ttyS0' sh "$RUN/cmd"
rc=$?
report "end_uptime=$(cut -d' ' -f1 /proc/uptime)"
[ -z "$OUT" ] || { sync; umount "$OUT"; }
report "rc=$rc"
halt
