/* crib-hostports: writes and removes a pod's host-port rules in the daemon's nftables table
 * (nft-rules.c). crib-pinns runs it, for pods with host ports only: this is the one crib binary
 * that loads libnftables, so it is linked dynamically, and crib-pinns, which every pod's start
 * and stop runs, can be a static PIE (pinns/host-ports.c). */
#ifndef CRIB_HOSTPORTS_H
#define CRIB_HOSTPORTS_H

#include <stddef.h>

#include "crib-error.h"
#include "crib-hostport-opts.h"

#define HOSTPORTS_PROG "crib-hostports"

/* The pod's addresses the rules DNAT to, one per family at most. */
struct pod_ips {
  int family[2];
  unsigned char addr[2][16];
  size_t n;
};

/* Replace the pod's rules by o's ports (DNAT to the pod's address of each family); a no-op
 * without a table. One nftables transaction: on failure nothing changed. */
int hostports_install(const struct crib_hostport_opts *o, const struct pod_ips *ips, crib_err *err);
/* Remove the pod's jumps and chain; fine when they, or the table, are gone. */
int hostports_remove(const struct crib_hostport_opts *o, crib_err *err);

#endif
