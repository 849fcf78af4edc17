#!/usr/bin/env bash
# Installs a built crib checkout on this node, or removes it again. As root, after
# `npm ci && npm run build` (docs/INSTALL.md):
#
#   deploy/install.sh [--prefix DIR] [--node PATH] [--enable]
#   deploy/install.sh --uninstall [--prefix DIR] [--purge]
#
# What goes where (PREFIX defaults to /usr/local):
#   PREFIX/lib/crib/            the daemon: package.json, dist/, cri-api/api.proto and the
#                               production node_modules (the checkout's tested versions, copied)
#   PREFIX/libexec/crib/        crib-runtime, crib-monitor, crib-pinns, crib-hostports, and
#                               crib-libc.node (the daemon's libc addon); src/native-paths.ts
#                               looks here for an installed package
#   PREFIX/bin/crib             runs PREFIX/lib/crib/dist/cli.js with the node it was installed with
#   PREFIX/share/crib/          the reference files: config.toml as shipped, crictl.yaml,
#                               kubelet-config.yaml, kubeadm.yaml, and this script
#   PREFIX/share/doc/crib/      INSTALL.md
#   /etc/systemd/system/crib.service   replaced on every install (local changes: `systemctl edit`)
#   /etc/crib/config.toml       only if absent: an existing config is never touched
#   /etc/crictl.yaml            only if absent
# PREFIX/share/crib/install-manifest records what installs created, so --uninstall removes
# exactly that: files, and the directories it had to create. --uninstall keeps /etc/crib and
# /etc/crictl.yaml and the daemon's state (/var/lib/crib, /run/crib); --purge removes those too
# (it refuses while crib runs or anything is mounted below them: remove the pods first).
#
# DESTDIR=/some/dir puts every path above under that directory (for packaging and tests); the
# installed files still refer to the real paths. It needs no root and never calls systemctl.
# Installing again over an install is an upgrade: running containers are not touched, and the
# running daemon keeps its version until `systemctl restart crib`.
set -euo pipefail

checkout=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
node_bin=
mode=install
enable=
purge=
destdir=${DESTDIR:-}

die() {
  echo "install.sh: $*" >&2
  exit 1
}
usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --node) [ $# -ge 2 ] || die "--node needs the path of a node binary"; node_bin=$2; shift 2 ;;
    --node=*) node_bin=${1#--node=}; shift ;;
    --enable) enable=1; shift ;;
    --uninstall) mode=uninstall; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; usage 2 ;;
  esac
done

case $prefix in /*) ;; *) die "--prefix must be an absolute path, not \"$prefix\"" ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] || die "--prefix must not be /"
case $destdir in ''|/*) ;; *) die "DESTDIR must be an absolute path, not \"$destdir\"" ;; esac
destdir=${destdir%/}
[ "$mode" = install ] || [ -z "$enable" ] || die "--enable is for installing, not with --uninstall"
[ "$mode" = uninstall ] || [ -z "$purge" ] || die "--purge goes with --uninstall"
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (it writes $prefix, /etc and the systemd unit), or set DESTDIR to stage the files elsewhere"
fi

lib=$prefix/lib/crib
manifest=$prefix/share/crib/install-manifest
# systemctl only for a real install on a host that runs systemd.
live_systemd=
if [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then live_systemd=1; fi

# Paths in the manifest are the real ones; D prefixes DESTDIR to reach the file.
D() { printf '%s%s' "$destdir" "$1"; }

# ---- the record of what an install created ---------------------------------------------------
declare -a created=()
stage=
old=
declare -A seen=()
record() { # KIND PATH: file, dir (created by us; removed if empty), config (kept unless --purge)
  local key="$1 $2"
  [ -z "${seen[$key]:-}" ] || return 0
  seen[$key]=1
  created+=("$key")
}
# mkdir -p that records every directory it had to create.
make_dir() {
  local dir=$1 missing=() d
  d=$dir
  while [ "$d" != / ] && [ ! -d "$(D "$d")" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
  for d in "${missing[@]}"; do
    mkdir -m 0755 "$(D "$d")"
    record dir "$d"
  done
}
write_manifest() {
  [ -d "$(D "$(dirname "$manifest")")" ] || return 0
  record file "$manifest"
  printf '%s\n' "# Written by crib's deploy/install.sh: what it created, for --uninstall." "${created[@]}" > "$(D "$manifest")"
}
# After an --uninstall without --purge, what it kept (the configs and the directories holding
# them) is listed in /etc/crib, so a later --purge or install still knows they are crib's.
leftovers=/etc/crib/install-manifest
read_manifest() { # prints the recorded lines of both lists, or nothing when there are none
  local f
  for f in "$(D "$manifest")" "$(D "$leftovers")"; do
    if [ -f "$f" ]; then grep -E '^(file|dir|config) /' "$f" || true; fi
  done
}

# ---- install ---------------------------------------------------------------------------------
do_install() {
  local n
  for n in dist/cli.js native/build/crib-runtime native/build/crib-monitor native/build/crib-pinns native/build/crib-hostports native/build/crib-libc.node cri-api/api.proto docs/INSTALL.md; do
    [ -e "$checkout/$n" ] || die "$checkout/$n is missing: build crib first (npm ci && npm run build in $checkout)"
  done
  [ -d "$checkout/node_modules" ] || die "$checkout/node_modules is missing: run npm ci in $checkout"
  if [ -z "$node_bin" ]; then node_bin=$(command -v node) || die "no node on PATH: install Node.js 20.18 or later, or give --node PATH"; fi
  [ -x "$node_bin" ] || die "--node $node_bin is not an executable"
  node_bin=$(readlink -f "$node_bin")
  "$node_bin" -e '
    const [maj, min] = process.versions.node.split(".").map(Number);
    if (maj < 20 || (maj === 20 && min < 18)) { console.error(`node ${process.version} is too old: crib needs 20.18 or later`); process.exit(1); }' ||
    die "$node_bin cannot run crib"

  # DESTDIR itself is the caller's: made if need be, never recorded or removed.
  [ -z "$destdir" ] || mkdir -p "$destdir"

  # What earlier installs created stays ours (a config they put in /etc is still theirs to purge).
  local line
  while IFS= read -r line; do [ -z "$line" ] || record "${line%% *}" "${line#* }"; done < <(read_manifest)

  make_dir "$prefix/lib"
  make_dir "$prefix/libexec/crib"
  make_dir "$prefix/bin"
  make_dir "$prefix/share/crib"
  make_dir "$prefix/share/doc/crib"
  make_dir /etc/systemd/system
  make_dir /etc/crib

  # Whatever happens from here, the manifest lists what exists, so even a failed install can
  # be uninstalled.
  trap 'rm -rf "$stage" "$old"; write_manifest' EXIT

  # The package, staged beside its place and swapped in, so an interrupted install leaves the
  # previous one whole.
  stage=$(D "$prefix/lib/.crib-new-$$")
  old=$(D "$prefix/lib/.crib-old-$$")
  rm -rf "$stage"
  mkdir -m 0755 "$stage" "$stage/cri-api"
  cp "$checkout/package.json" "$stage/"
  [ ! -f "$checkout/LICENSE" ] || cp "$checkout/LICENSE" "$stage/"
  cp -R "$checkout/dist" "$stage/dist"
  cp "$checkout/cri-api/api.proto" "$stage/cri-api/"
  "$node_bin" "$checkout/deploy/copy-production-modules.mjs" "$checkout" "$stage" >/dev/null
  if [ -e "$(D "$lib")" ]; then mv "$(D "$lib")" "$old"; fi
  mv "$stage" "$(D "$lib")"
  rm -rf "$old"
  record file "$lib"

  # Native binaries and the addon: copied beside and renamed over, so a running monitor (or
  # daemon, which maps the addon) keeps its own inode.
  for n in crib-runtime crib-monitor crib-pinns crib-hostports crib-libc.node; do
    install -m 0755 "$checkout/native/build/$n" "$(D "$prefix/libexec/crib/.$n.new")"
    mv -f "$(D "$prefix/libexec/crib/.$n.new")" "$(D "$prefix/libexec/crib/$n")"
    record file "$prefix/libexec/crib/$n"
  done

  # The command. It finds the package relative to itself (so a DESTDIR tree works too) and
  # always uses the node crib was installed with, whatever PATH systemd or a user has.
  local wrapper
  wrapper=$(D "$prefix/bin/.crib.new")
  cat > "$wrapper" <<EOF
#!/bin/sh
# crib, installed by deploy/install.sh from $checkout
exec "$node_bin" "\$(dirname "\$(readlink -f "\$0")")/../lib/crib/dist/cli.js" "\$@"
EOF
  chmod 0755 "$wrapper"
  mv -f "$wrapper" "$(D "$prefix/bin/crib")"
  record file "$prefix/bin/crib"

  # Reference copies: what /etc/crib/config.toml looked like as shipped (diff it on upgrade),
  # the kubelet and kubeadm snippets, and this script, which can uninstall without a checkout.
  for n in config.toml crictl.yaml kubelet-config.yaml kubeadm.yaml install.sh copy-production-modules.mjs; do
    install -m 0644 "$checkout/deploy/$n" "$(D "$prefix/share/crib/$n")"
    record file "$prefix/share/crib/$n"
  done
  chmod 0755 "$(D "$prefix/share/crib/install.sh")"
  install -m 0644 "$checkout/docs/INSTALL.md" "$(D "$prefix/share/doc/crib/INSTALL.md")"
  record file "$prefix/share/doc/crib/INSTALL.md"

  # The unit, with the prefix it was installed to.
  sed "s|/usr/local/|$prefix/|g" "$checkout/deploy/crib.service" > "$(D /etc/systemd/system/.crib.service.new)"
  chmod 0644 "$(D /etc/systemd/system/.crib.service.new)"
  mv -f "$(D /etc/systemd/system/.crib.service.new)" "$(D /etc/systemd/system/crib.service)"
  record file /etc/systemd/system/crib.service

  # Configuration: only where there is none. Readable by all: the `crib` command reads the
  # socket address from it; keep registry passwords in image.auth_file (mode 0600) instead.
  if [ ! -e "$(D /etc/crib/config.toml)" ]; then
    install -m 0644 "$checkout/deploy/config.toml" "$(D /etc/crib/config.toml)"
    record config /etc/crib/config.toml
  else
    echo "kept /etc/crib/config.toml (compare with $prefix/share/crib/config.toml)"
  fi
  if [ ! -e "$(D /etc/crictl.yaml)" ]; then
    install -m 0644 "$checkout/deploy/crictl.yaml" "$(D /etc/crictl.yaml)"
    record config /etc/crictl.yaml
  else
    echo "kept /etc/crictl.yaml"
  fi

  trap - EXIT
  write_manifest
  # Its entries are in the manifest now.
  rm -f "$(D "$leftovers")"
  echo "installed crib $("$node_bin" -p 'require(process.argv[1]).version' "$checkout/package.json") in ${destdir:+$destdir}$prefix"

  if [ -n "$live_systemd" ]; then
    systemctl daemon-reload
    if [ -n "$enable" ]; then
      systemctl enable --now crib.service
      echo "crib.service enabled and started"
    elif systemctl is-active --quiet crib.service; then
      echo "crib.service still runs the previous version: systemctl restart crib (containers keep running)"
    else
      echo "start it with: systemctl enable --now crib"
    fi
  elif [ -n "$enable" ]; then
    if [ -n "$destdir" ]; then echo "not enabling crib.service: DESTDIR is set"; else echo "not enabling crib.service: systemd is not running"; fi
  fi
}

# ---- uninstall -------------------------------------------------------------------------------
# Anything mounted at or below DIR (a container's rootfs, a pod's shm, pinned namespaces)?
mounted_below() {
  local dir=$1
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

do_uninstall() {
  local entries
  entries=$(read_manifest)
  [ -n "$entries" ] || die "crib is not installed in ${destdir}$prefix (no $(D "$manifest")); give the --prefix it was installed with"

  if [ -n "$purge" ]; then
    local s
    # crib-runtime's template mount namespace is not a pod's: the daemon removes it when it
    # stops, a daemon that was killed leaves it.
    local template
    template="$(D /run/crib)/runtime/.mount-template"
    if mounted_below "$template"; then
      umount "$template/ns" 2>/dev/null || true
      umount "$template" 2>/dev/null || true
    fi
    for s in /var/lib/crib /run/crib; do
      if mounted_below "$(D "$s")"; then
        die "$(D "$s") still has mounts (pods or containers exist): remove them first (crib rmp -af), then stop crib, then --purge"
      fi
    done
  fi
  if [ -n "$live_systemd" ]; then
    if systemctl is-active --quiet crib.service; then
      [ -z "$purge" ] || die "crib.service is running: remove the pods and stop it (systemctl stop crib) before --purge"
      systemctl stop crib.service
      echo "stopped crib.service (containers keep running; their monitors remain until the pods are removed)"
    fi
    systemctl disable --quiet crib.service 2>/dev/null || true
  fi

  local kind path dirs=()
  while read -r kind path; do
    case $kind in
      file) rm -rf "$(D "$path")" ;;
      config)
        if [ -n "$purge" ]; then rm -f "$(D "$path")"
        elif [ "$path" != "$leftovers" ] && [ -e "$(D "$path")" ]; then echo "kept $path (--purge removes it)"; fi ;;
      dir) dirs+=("$path") ;;
    esac
  done <<< "$entries"
  # Directories the install created, deepest first, and only if nothing else is in them now.
  local d
  while IFS= read -r d; do
    [ -z "$d" ] || rmdir "$(D "$d")" 2>/dev/null || true
  done < <(printf '%s\n' "${dirs[@]}" | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-)

  if [ -z "$purge" ]; then
    local kept=()
    while read -r kind path; do
      [ "$path" != "$leftovers" ] || continue
      if { [ "$kind" = config ] && [ -e "$(D "$path")" ]; } || { [ "$kind" = dir ] && [ -d "$(D "$path")" ]; }; then kept+=("$kind $path"); fi
    done <<< "$entries"
    if [ ${#kept[@]} -gt 0 ] && [ -d "$(D "$(dirname "$leftovers")")" ]; then
      printf '%s\n' "# Kept by crib's deploy/install.sh --uninstall; --uninstall --purge removes them." "${kept[@]}" "config $leftovers" > "$(D "$leftovers")"
    fi
  fi
  if [ -n "$purge" ]; then
    rm -rf --one-file-system "$(D /var/lib/crib)" "$(D /run/crib)"
    echo "purged crib's configuration and its state in /var/lib/crib and /run/crib"
  fi
  [ -z "$live_systemd" ] || systemctl daemon-reload
  echo "uninstalled crib from ${destdir}$prefix"
}

if [ "$mode" = install ]; then do_install; else do_uninstall; fi
