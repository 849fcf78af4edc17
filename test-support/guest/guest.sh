#!/usr/bin/env bash
# A throw-away QEMU guest whose kernel runs a pure cgroup v2 hierarchy, for the tests that need
# one: this host's own cgroup layout (v1 hybrid) cannot be changed while it is in use.
#
#   guest.sh prepare                     fetch the kernel and build the initramfs (cached)
#   guest.sh run [--out DIR] [--env NAME]... [--lsm apparmor|selinux] [--] CMD [ARGS...]
#                                        boot, run CMD in the current directory, power off;
#                                        exits with CMD's exit code
#
# The guest: Debian's cloud kernel (linux-image-cloud-amd64, fetched with `apt-get download` and
# unpacked, never installed) booted with cgroup_no_v1=all; root = this host's "/" shared
# read-only over virtiofs under a tmpfs overlay (so the guest sees the same files, builds and
# node_modules, and writes nothing back); /tmp and /var/tmp on a fresh sparse ext4 disk; cgroup2 at
# /sys/fs/cgroup with every controller enabled; no network card (pods use bridges on the guest's
# own kernel). --out DIR is the one host directory the guest can write, mounted at the same path.
# --env NAME passes a variable of this environment to CMD (PATH, HOME, LANG and CI always are).
# --lsm picks the kernel's major security module: apparmor (Debian's default) or selinux, booted
# with security=selinux and the host's installed policy (selinux-policy-default) loaded in
# permissive mode — a node whose labels are real (set, checked, reported) though nothing is
# denied: the host's files carry no labels over virtiofs, so enforcing would stop the guest.
# CMD's stdout and stderr arrive on stdout; guest.sh's own messages go to stderr, prefixed
# "[guest]", with the boot and run times.
#
# Environment: CRIB_GUEST_CACHE (default /var/cache/crib-test-guest), CRIB_GUEST_MEM (MiB,
# default 3072), CRIB_GUEST_CPUS (default: this host's), CRIB_GUEST_TIMEOUT (seconds, default
# 1800; then the guest is killed), CRIB_GUEST_DEBUG=1 (kernel messages on the console).
# Exit 125: the guest never reported an exit code (did not boot, panicked, timed out).
#
# Acceleration: TCG only. This host's KVM is PVM-only and Debian's kernel faults under it, so
# the guest is emulated: it boots in ~5 s and fork- and syscall-heavy work runs 10-50x slower.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CACHE=${CRIB_GUEST_CACHE:-/var/cache/crib-test-guest}
VIRTIOFSD=/usr/lib/qemu/virtiofsd
KPKG_META=linux-image-cloud-amd64
# Modules the initramfs loads, in order, to reach the virtiofs root and the scratch disk.
INITRD_MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci fuse virtiofs virtio_blk overlay"

say() { echo "[guest] $*" >&2; }
die() { say "$*"; exit 2; }

need_tools() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  [ -x "$VIRTIOFSD" ] || missing+=("qemu-system-common ($VIRTIOFSD)")
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  command -v lz4 >/dev/null || missing+=(lz4)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  [ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]} (deploy/install-deps.sh --test installs them)"
}

# The kernel package linux-image-cloud-amd64 points at in apt's lists ("" when the lists do
# not know it, e.g. before any apt-get update).
candidate_kernel() {
  apt-cache depends "$KPKG_META" 2>/dev/null |
    awk '/Depends: linux-image-/ { sub(/^linux-image-/, "", $2); print $2; exit }'
}

# The newest kernel already in the cache, for machines whose apt lists are not there (then no
# apt-get update is needed to boot).
cached_kernel() {
  local d
  d=$(ls -d "$CACHE"/kernel-*/ 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && [ -e "$d/ready" ] && basename "$d" | sed 's/^kernel-//'
  return 0
}

# Fills $CACHE/kernel-$KVER: the unpacked package, its modules indexed by depmod, an
# uncompressed vmlinux (decompressing the bzImage under TCG costs seconds on every boot) and
# the initramfs. "ready" is written last; the whole dir is built aside and renamed into place,
# so an interrupted build never leaves a half-made cache behind.
build_kernel() {
  local kver=$1 dir=$CACHE/kernel-$1 tmp
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/.build.XXXXXX")
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' RETURN
  say "fetching linux-image-$kver"
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$kver" >&2) ||
    die "apt-get download linux-image-$kver failed"
  dpkg-deb -x "$tmp"/linux-image-"$kver"_*.deb "$tmp/pkg"
  rm -f "$tmp"/*.deb
  # busybox's depmod and modprobe (in the guest), so the host needs no kmod.
  busybox depmod -b "$tmp/pkg" "$kver"
  extract_vmlinux "$tmp/pkg/boot/vmlinuz-$kver" "$tmp/vmlinux"
  echo "$kver" > "$tmp/kver"
  touch "$tmp/ready"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - RETURN
}

# vmlinux from a bzImage whose payload is lz4 (Debian's): found by the lz4 frame magic.
# Without it the bzImage itself is booted, which works, only slower.
extract_vmlinux() {
  local offset
  offset=$(grep -obUaP '\x02\x21\x4c\x18' "$1" | head -1 | cut -d: -f1 || true)
  if [ -n "$offset" ]; then
    # lz4 complains about the bytes after the frame (the bzImage's tail) and exits non-zero
    # once the kernel is out: the ELF header says whether it worked.
    tail -c +"$((offset + 1))" "$1" | lz4 -dc > "$2" 2>/dev/null || true
    [ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" = '177ELF' ] && return 0
  fi
  say "no lz4 vmlinux inside $1: booting the compressed kernel"
  rm -f "$2"
}

# The initramfs depends on the kernel's modules, initramfs-init.sh and busybox: its inputs'
# digest is part of its name, so a change to any of them builds a new one.
build_initrd() {
  local kdir=$1 kver=$2 digest out tmp m f
  digest=$( { cat "$HERE/initramfs-init.sh"; echo "$INITRD_MODULES"; sha256sum /bin/busybox; } |
    sha256sum | cut -c1-16)
  out=$kdir/initrd-$digest.cpio.gz
  INITRD=$out
  [ -e "$out" ] && return 0
  tmp=$(mktemp -d "$CACHE/.initrd.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp"/root/{bin,proc,sys,dev,host,rw,newroot,mods}
  cp /bin/busybox "$tmp/root/bin/"
  ln -s busybox "$tmp/root/bin/sh"
  for m in $INITRD_MODULES; do
    f=$(find "$kdir/pkg/lib/modules/$kver" -name "$m.ko" -print -quit)
    [ -n "$f" ] || die "module $m.ko not found in linux-image-$kver"
    cp "$f" "$tmp/root/mods/"
  done
  echo "$INITRD_MODULES" > "$tmp/root/modules"
  install -m 755 "$HERE/initramfs-init.sh" "$tmp/root/init"
  (cd "$tmp/root" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1 > "$tmp/initrd")
  rm -f "$kdir"/initrd-*.cpio.gz
  mv "$tmp/initrd" "$out"
  trap - RETURN
}

# Sets KVER, KDIR, KERNEL, INITRD.
prepare() {
  need_tools
  KVER=$(candidate_kernel)
  [ -n "$KVER" ] || KVER=$(cached_kernel)
  if [ -z "$KVER" ] || [ ! -e "$CACHE/kernel-$KVER/ready" ]; then
    # A kernel to fetch. Lists that are missing, or older than the mirror (which drops
    # superseded kernels), would name one that cannot be downloaded: refresh them first.
    say "apt-get update, to fetch the guest kernel"
    apt-get update -qq >&2
    KVER=$(candidate_kernel)
    [ -n "$KVER" ] || die "apt-cache knows no $KPKG_META: cannot choose a guest kernel"
    [ -e "$CACHE/kernel-$KVER/ready" ] || build_kernel "$KVER"
  fi
  KDIR=$CACHE/kernel-$KVER
  KERNEL=$KDIR/vmlinux
  [ -e "$KERNEL" ] || KERNEL=$KDIR/pkg/boot/vmlinuz-$KVER
  build_initrd "$KDIR" "$KVER"
}

# virtiofsd in a private mount namespace with its own /run (it writes a pid file there), for
# the read-only root share also with "/" re-bound read-only: this virtiofsd has no read-only
# switch; the guest mounts the share read-only as well. The run dir is bound onto itself first
# so the socket can still be created in it.
start_virtiofsd() { # MODE(ro|rw) SOCKET LOG ARGS...
  local mode=$1 sock=$2 log=$3
  shift 3
  RUN="$RUN" MODE=$mode unshare -m --propagation private sh -c '
    mount --bind "$RUN" "$RUN" && mount -t tmpfs tmpfs /run || exit 1
    [ "$MODE" = rw ] || mount -o remount,bind,ro / || exit 1
    exec "$@"' sh "$VIRTIOFSD" --socket-path="$sock" -o log_level=err "$@" </dev/null 2>"$log" &
  DAEMONS+=($!)
}

run() {
  local out="" envs=(PATH HOME LANG CI) lsm=apparmor
  while [ $# -gt 0 ]; do
    case $1 in
      --out) out=$(mkdir -p "$2" && cd "$2" && pwd -P); shift 2 ;;
      --env) envs+=("$2"); shift 2 ;;
      --lsm) lsm=$2; shift 2
        case $lsm in apparmor|selinux) ;; *) die "--lsm: apparmor or selinux, not '$lsm'" ;; esac ;;
      --) shift; break ;;
      -*) die "unknown option $1" ;;
      *) break ;;
    esac
  done
  [ $# -ge 1 ] || die "usage: guest.sh run [--out DIR] [--env NAME]... [--lsm apparmor|selinux] [--] CMD [ARGS...]"
  local t0=$SECONDS
  prepare

  mkdir -p "$CACHE/runs"
  RUN=$(mktemp -d "$CACHE/runs/run.XXXXXX")
  DAEMONS=()
  trap 'for p in "${DAEMONS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$RUN"' EXIT
  {
    echo "export TERM=dumb"
    for v in "${envs[@]}"; do [ -z "${!v+x}" ] || echo "export $v=$(printf %q "${!v}")"; done
    echo "cd $(printf %q "$PWD") || exit 126"
    printf 'exec'; printf ' %q' "$@"; echo
  } > "$RUN/cmd"
  echo "$out" > "$RUN/out"
  echo "$lsm" > "$RUN/lsm"
  pwd -P > "$RUN/workdir"
  echo "$KDIR/pkg/lib/modules" > "$RUN/moddir"
  truncate -s 16G "$RUN/scratch.img"
  mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$RUN/scratch.img"

  local shares=()
  start_virtiofsd ro "$RUN/root.sock" "$RUN/virtiofsd-root.log" -o source=/ -o cache=always -o sandbox=chroot
  shares+=(-chardev "socket,id=vfs0,path=$RUN/root.sock" -device vhost-user-fs-pci,chardev=vfs0,tag=hostroot)
  if [ -n "$out" ]; then
    start_virtiofsd rw "$RUN/out.sock" "$RUN/virtiofsd-out.log" -o source="$out" -o cache=none
    shares+=(-chardev "socket,id=vfs1,path=$RUN/out.sock" -device vhost-user-fs-pci,chardev=vfs1,tag=out)
  fi
  for _ in $(seq 200); do
    [ -S "$RUN/root.sock" ] && { [ -z "$out" ] || [ -S "$RUN/out.sock" ]; } && break
    sleep 0.05
  done
  [ -S "$RUN/root.sock" ] || die "virtiofsd did not start: $(cat "$RUN/virtiofsd-root.log")"

  local mem=${CRIB_GUEST_MEM:-3072} log="quiet loglevel=1" qrc=0 security=""
  if [ "$lsm" = selinux ]; then
    ls /etc/selinux/default/policy/policy.* >/dev/null 2>&1 ||
      die "--lsm selinux needs Debian's selinux-policy-default installed on this host"
    security="security=selinux"
  fi
  [ -z "${CRIB_GUEST_DEBUG:-}" ] || log="loglevel=7"
  : > "$RUN/status"
  say "booting linux-image-$KVER ($lsm, TCG, ${CRIB_GUEST_CPUS:-$(nproc)} vCPUs, $mem MiB)"
  local t1=$SECONDS
  timeout -k 5 "${CRIB_GUEST_TIMEOUT:-1800}" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -machine pc -smp "${CRIB_GUEST_CPUS:-$(nproc)}" -m "$mem" \
    -nodefaults -no-user-config -display none -no-reboot \
    -object "memory-backend-memfd,id=mem,size=${mem}M,share=on" -numa node,memdev=mem \
    "${shares[@]}" -nic none \
    -drive "file=$RUN/scratch.img,format=raw,if=virtio,cache=unsafe,discard=unmap" \
    -chardev stdio,id=con,signal=off -serial chardev:con -serial "file:$RUN/status" \
    -kernel "$KERNEL" -initrd "$INITRD" \
    -append "console=ttyS0 $log panic=-1 cgroup_no_v1=all $security crib.init=$HERE/guest-init.sh crib.run=$RUN" \
    </dev/null || qrc=$?

  local status booted ended rc
  status=$(tr -d '\r' < "$RUN/status")
  booted=$(sed -n 's/^booted_uptime=//p' <<<"$status")
  ended=$(sed -n 's/^end_uptime=//p' <<<"$status")
  rc=$(sed -n 's/^rc=//p' <<<"$status")
  if [ -z "$rc" ]; then
    local why="qemu exit $qrc"
    [ "$qrc" != 124 ] || why="killed after ${CRIB_GUEST_TIMEOUT:-1800} s"
    say "the guest reported no exit code ($why)"
    grep '^error=' <<<"$status" | sed 's/^/[guest] /' >&2 || true
    exit 125
  fi
  say "prepare $((t1 - t0)) s, boot ${booted} s, command $(awk -v a="$booted" -v b="$ended" 'BEGIN{printf "%.1f", b-a}') s, total $((SECONDS - t0)) s; exit $rc"
  exit "$rc"
}

case ${1:-} in
  prepare)
    prepare
    # Kernels from before an update of the package are not needed any more. Only here, not on
    # each run: a guest booted from one may still be running.
    for d in "$CACHE"/kernel-*; do [ "$d" = "$KDIR" ] || rm -rf "$d"; done
    say "ready: linux-image-$KVER, $INITRD" ;;
  run) shift; run "$@" ;;
  *) die "usage: guest.sh prepare | run [--out DIR] [--env NAME]... [--lsm apparmor|selinux] [--] CMD [ARGS...]" ;;
esac
