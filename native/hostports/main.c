/* crib-hostports install|remove: a pod's host-port rules (hostports.h).
 *
 *   crib-hostports install --nft-table T --nft-family ip|ip6... --hostport-chain C
 *                          [--hostport PROTO:HOSTPORT:CONTAINERPORT[:HOSTIP]...] --pod-ip IP...
 *   crib-hostports remove  --nft-table T --nft-family ip|ip6... --hostport-chain C
 *
 * Exit 0 when done; 1 with "crib-hostports: <why>" on stderr; 2 on a usage error. Nothing is
 * written on stdout. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "hostports.h"

static int usage(crib_err *err) {
  crib_err_print(HOSTPORTS_PROG, err);
  fprintf(stderr, "usage: " HOSTPORTS_PROG " install --nft-table T --nft-family ip|ip6... --hostport-chain C\n"
                  "                      [--hostport PROTO:HOSTPORT:CONTAINERPORT[:HOSTIP]...] --pod-ip IP...\n"
                  "       " HOSTPORTS_PROG " remove --nft-table T --nft-family ip|ip6... --hostport-chain C\n");
  return 2;
}

static int add_pod_ip(struct pod_ips *ips, const char *value, crib_err *err) {
  unsigned char addr[16];
  int family = inet_pton(AF_INET, value, addr) == 1 ? AF_INET : inet_pton(AF_INET6, value, addr) == 1 ? AF_INET6 : 0;
  if (family == 0) return crib_fail(err, 0, "--pod-ip `%s`: not an IP address", value);
  for (size_t i = 0; i < ips->n; i++)
    if (ips->family[i] == family)
      return crib_fail(err, 0, "--pod-ip `%s`: a second %s address (one per family)", value, family == AF_INET ? "IPv4" : "IPv6");
  ips->family[ips->n] = family;
  memcpy(ips->addr[ips->n], addr, sizeof addr);
  ips->n++; /* two distinct families at most: fits */
  return 0;
}

int main(int argc, char **argv) {
  crib_err err = {0};
  static struct crib_hostport_opts o;
  struct pod_ips ips = {0};
  if (argc < 2 || (strcmp(argv[1], "install") != 0 && strcmp(argv[1], "remove") != 0)) {
    crib_fail(&err, 0, "install or remove is required");
    return usage(&err);
  }
  bool install = strcmp(argv[1], "install") == 0;
  for (int i = 2; i < argc; i += 2) {
    if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) {
      crib_fail(&err, 0, "%s: `%s` is not an option with a value", argv[1], argv[i]);
      return usage(&err);
    }
    const char *name = argv[i] + 2, *value = argv[i + 1];
    int r;
    if (strcmp(name, "pod-ip") == 0) r = install ? add_pod_ip(&ips, value, &err) : crib_fail(&err, 0, "--pod-ip is for install");
    else if (strcmp(name, "hostport") == 0 && !install) r = crib_fail(&err, 0, "--hostport is for install");
    else if ((r = crib_hostport_opt_set(&o, name, value, &err)) == 1) r = crib_fail(&err, 0, "unknown option `%s`", argv[i]);
    if (r < 0) {
      crib_err_wrap(&err, "%s", argv[1]);
      return usage(&err);
    }
  }
  if (crib_hostport_opts_check(&o, &err) < 0) return usage(&err);
  if (o.table == NULL) {
    crib_fail(&err, 0, "%s: --nft-table, --nft-family and --hostport-chain are required", argv[1]);
    return usage(&err);
  }
  if (install && ips.n == 0) {
    crib_fail(&err, 0, "install: at least one --pod-ip is required");
    return usage(&err);
  }
  if ((install ? hostports_install(&o, &ips, &err) : hostports_remove(&o, &err)) < 0) {
    crib_err_print(HOSTPORTS_PROG, &err);
    return 1;
  }
  return 0;
}
