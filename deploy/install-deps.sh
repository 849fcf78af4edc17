#!/usr/bin/env bash
# Installs what crib needs to build and run on Debian 12 with Node 20, skipping what is there.
#   deploy/install-deps.sh          runtime + build dependencies
#   deploy/install-deps.sh --test   also what the test suite needs (registry, reference runtimes)
set -euo pipefail
cd "$(dirname "$0")/.."

# libnftables-dev: the header of the library crib-pinns loads for pods' host-port rules
# (native/pinns/host-ports.c); the library itself comes with nftables.
need=(build-essential pkg-config libseccomp-dev libjansson-dev libnftables-dev iproute2 nftables zstd)
if [ "${1:-}" = "--test" ]; then
  # docker-registry: the real registry the image tests pull from; busybox-static: the rootfs of
  # every test image; runc/crun: reference runtimes for differential tests; apache2-utils for
  # htpasswd; openssl for test certificates; curl for network tests; Go and spdystream for the
  # SPDY interop test; the reference CNI plugins for the CNI backend's tests; strace to check
  # which cgroup files the runtime writes; libcap2-bin (getcap) to check an unpacked layer kept
  # a file capability. The cgroup v2 tier boots a QEMU guest (test-support/guest/guest.sh):
  # qemu-system-x86 (its qemu-system-common has /usr/lib/qemu/virtiofsd), e2fsprogs for the
  # guest's scratch disk, lz4 to unpack the guest kernel; apparmor (apparmor_parser and the
  # profile includes) for the AppArmor tests in that guest, whose root is this host's "/";
  # selinux-policy-default, the policy the guest's SELinux boot loads (on a host whose kernel does
  # not run SELinux it is only files); criu for the checkpoint/restore tests (they check criu's
  # own verdict on this kernel).
  need+=(docker-registry busybox-static runc crun apache2-utils openssl curl golang-go golang-github-docker-spdystream-dev
    containernetworking-plugins strace libcap2-bin qemu-system-x86 e2fsprogs lz4 apparmor selinux-policy-default criu)
fi

missing=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
  # The guest's kernel (Debian's linux-image-cloud-amd64, downloaded, not installed) and
  # initramfs, cached in /var/cache/crib-test-guest and rebuilt when either's inputs change.
  bash test-support/guest/guest.sh prepare
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci: exactly the locked versions, and a clean clone stays clean. The lock lists every
  # platform's optional packages (rollup, esbuild), so npm 11 accepts it on any machine.
  npm ci --no-audit --no-fund
fi
