/* A pod's host ports as crib-pinns and crib-hostports take them on their command lines: the
 * daemon's nftables table, the families it exists in, the pod's own chain, and the ports
 * (--nft-table, --nft-family, --hostport-chain, --hostport PROTO:HOSTPORT:CONTAINERPORT[:HOSTIP]).
 * crib-pinns checks them before it makes anything and hands them to crib-hostports, which
 * writes the rules (hostports/nft-rules.c); both read them with this one parser. */
#ifndef CRIB_HOSTPORT_OPTS_H
#define CRIB_HOSTPORT_OPTS_H

#include <stddef.h>

#include "crib-error.h"

#define CRIB_MAX_HOSTPORTS 1024

struct crib_hostport {
  char proto[5]; /* "tcp", "udp", "sctp" */
  unsigned host_port, container_port;
  int host_family; /* 0: every local address; else AF_INET/AF_INET6 of host_ip */
  unsigned char host_ip[16];
};

struct crib_hostport_opts {
  const char *table; /* NULL: no host-port work */
  const char *chain;
  int families[2]; /* AF_INET, AF_INET6: the families the table exists in */
  size_t nfamilies;
  struct crib_hostport ports[CRIB_MAX_HOSTPORTS];
  size_t nports;
};

/* Set option `name` ("nft-table", "nft-family", "hostport-chain", "hostport") from `value`,
 * checking it: 0, -1 on a bad value, 1 when `name` is not a host-port option. */
int crib_hostport_opt_set(struct crib_hostport_opts *o, const char *name, const char *value, crib_err *err);
/* The options together make sense: all or none of table, chain and family, and each host IP of
 * a family the table exists in. */
int crib_hostport_opts_check(const struct crib_hostport_opts *o, crib_err *err);
/* "ip" or "ip6", nftables' name of the family. */
const char *crib_nft_family(int family);

#endif
