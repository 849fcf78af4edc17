/* crib-pinns: creates a pod's namespaces in a short-lived child and pins them as bind-mounted
 * nsfs files, so no process has to stay alive to hold them (CRI-O's drop-infra model). The
 * daemon is multithreaded Node, where unshare/setns would affect one thread only; all namespace
 * work therefore happens here. */
#ifndef CRIB_PINNS_H
#define CRIB_PINNS_H

#include <stdbool.h>
#include <stddef.h>

#include "crib-error.h"
#include "crib-hostport-opts.h"
#include "crib-parse-uint.h"
#include "crib-io.h"

#define PINNS_PROG "crib-pinns"
#define PINNS_MAX_SYSCTLS 128
/* Lines per uid_map/gid_map: kubelet sends one; the kernel takes up to 340. */
#define PINNS_MAX_ID_MAPS 64

/* The namespace kinds a pod pins, with the file name each gets under the pin dir. */
struct ns_kind {
  const char *name; /* "net", also the file name under /proc/<pid>/ns and under the pin dir */
  int flag;         /* CLONE_NEW* */
};
extern const struct ns_kind pinns_kinds[];
extern const size_t pinns_nkinds;

/* Index of the user namespace in pinns_kinds: made first, so it owns the others. */
#define PINNS_USER 3

/* One line of an id map: ids [inside, inside+count) are [outside, outside+count) outside. */
struct id_map {
  unsigned long inside, outside, count;
};

struct id_maps {
  struct id_map m[PINNS_MAX_ID_MAPS];
  size_t n;
};

/* pod-net.c: a pod's veth pair and addresses (see there). */
#define PINNS_POD_IF "eth0"
#define PINNS_MAX_POD_ADDRS 4

struct pod_addr {
  int family; /* AF_INET, AF_INET6 */
  unsigned char addr[16];
  unsigned char prefix;
  bool nodad;
};

struct pod_gw {
  int family;
  unsigned char addr[16];
};

/* host-ports.c: a pod's host-port rules, made and removed by crib-hostports (see there). */
struct hostport_opts {
  struct crib_hostport_opts parsed; /* checked here, before anything is made */
  const char *helper;               /* --nft-helper: the crib-hostports binary */
  /* The host-port options as given ("--name", value, ...), handed on to the helper. */
  const char *args[2 * (CRIB_MAX_HOSTPORTS + 8)];
  size_t nargs;
};

/* Set option `name` ("nft-helper", or a host-port option of crib-hostport-opts.h); 1 when the
 * name is not one of them. */
int pinns_hostports_set(struct hostport_opts *o, const char *name, const char *value, crib_err *err);
/* The options together make sense, and name the helper when there are any. */
int pinns_hostports_check(const struct hostport_opts *o, crib_err *err);
struct pod_net_opts;
/* Replace the pod's rules by the ports (DNAT to the pod's --addr of each family); no-op without
 * a table. One nftables transaction: on failure nothing changed. */
int pinns_hostports_install(const struct hostport_opts *o, const struct pod_net_opts *net, crib_err *err);
/* Remove the pod's jumps and chain; fine when they, or the table, are gone. */
int pinns_hostports_remove(const struct hostport_opts *o, crib_err *err);

struct pod_net_opts {
  const char *netns; /* the pinned network namespace file */
  const char *bridge, *host_if;
  unsigned mtu; /* 0: the kernel's default */
  struct pod_addr addrs[PINNS_MAX_POD_ADDRS];
  size_t naddrs;
  struct pod_gw gws[PINNS_MAX_POD_ADDRS];
  size_t ngws;
  struct hostport_opts ports; /* installed last by attach, removed first by detach */
};

/* Set option `name` ("netns", "bridge", "host-if", "mtu", "addr", "gw", or a host-port option)
 * from its text, checking it; "addr", "gw", "nft-family" and "hostport" may repeat. */
int pinns_pod_net_set(struct pod_net_opts *o, const char *name, const char *value, crib_err *err);
/* Whether the options make a complete attach (required ones present, gateways match addresses). */
int pinns_pod_net_check(const struct pod_net_opts *o, crib_err *err);
int pinns_pod_net_attach(const struct pod_net_opts *o, crib_err *err);
/* Remove the pod's host ports (when o->ports names a table; then PINNS_PORTS_REMOVED is written
 * on a line of stdout), then delete its veth by its host end (o->host_if); a missing one is
 * fine, a non-veth is refused. */
#define PINNS_PORTS_REMOVED "host ports removed"
int pinns_pod_net_detach(const struct pod_net_opts *o, crib_err *err);

struct pin_opts {
  const char *dir;
  bool want[4]; /* indexed like pinns_kinds */
  struct id_maps uids, gids; /* with want[PINNS_USER] */
  const char *hostname;
  const char *sysctls[PINNS_MAX_SYSCTLS];
  size_t nsysctls;
  /* With --net: attach the new network namespace to the bridge (netns is filled in by pinning). */
  struct pod_net_opts *net;
};

/* pin.c */
int pinns_pin(const struct pin_opts *opts, crib_err *err);
int pinns_remove(const char *dir, crib_err *err);
/* Build "<dir>/<name>" into buf; fails on overflow. */
int pinns_path(char *buf, size_t size, const char *dir, const char *name, crib_err *err);

/* id-maps.c: parse "INSIDE:OUTSIDE:COUNT" into maps (checking bounds, overflow and overlaps as
 * each line arrives); check a complete map (it must map id 0 inside, never id 0 outside);
 * render it in /proc/<pid>/uid_map format. `what` names the option for messages. */
int pinns_id_map_add(struct id_maps *maps, const char *text, const char *what, crib_err *err);
int pinns_id_maps_check(const struct id_maps *maps, const char *what, crib_err *err);
int pinns_id_maps_format(const struct id_maps *maps, char *buf, size_t size, crib_err *err);

/* sysctl.c: which namespace a sysctl key belongs to (index into pinns_kinds), or -1 with err set
 * when the key is malformed or would change the host. */
int pinns_sysctl_kind(const char *key, crib_err *err);
/* Write "key=value" through /proc/sys of the calling process's namespaces. */
int pinns_sysctl_apply(const char *assignment, crib_err *err);

/* loopback.c: bring `lo` up in the calling process's network namespace. */
int pinns_loopback_up(crib_err *err);

/* pod-init.c: start the detached init of a pod's PID namespace; stores its host pid. */
int pinns_pod_init(const char *dir, int *pid_out, crib_err *err);

/* netns-exec.c: join the network namespace pinned at `file` and exec argv; returns only on error. */
int pinns_netns_exec(const char *file, char *const argv[], crib_err *err);

/* port-forward.c: join the network namespace pinned at `file`, connect to localhost:<port> and
 * hand the connected socket to the daemon over fd 3 (SCM_RIGHTS). */
int pinns_port_forward(const char *file, const char *port, crib_err *err);

/* A full read loop over a pipe: the number of bytes read (< len only at EOF), or -1. Writes use
 * crib_write_all (crib-io.h). */
long pinns_read_all(int fd, void *buf, size_t len);

#endif
