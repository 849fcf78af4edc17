/* The host-port options both crib-pinns and crib-hostports read (crib-hostport-opts.h). */
#include "crib-hostport-opts.h"
#include "crib-parse-uint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const char *crib_nft_family(int family) { return family == AF_INET ? "ip" : "ip6"; }

/* nftables identifiers as the daemon makes them (table "crib", chains "hp-<hex>"): plain names,
 * so they never need quoting in the script and a listing's "jump <name> #" is unambiguous. */
static int check_ident(const char *value, const char *what, crib_err *err) {
  size_t len = strlen(value);
  if (len == 0 || len > 32) return crib_fail(err, 0, "%s `%.40s`: an nftables name has 1 to 32 characters", what, value);
  if (!((value[0] >= 'a' && value[0] <= 'z') || (value[0] >= 'A' && value[0] <= 'Z')))
    return crib_fail(err, 0, "%s `%s`: an nftables name starts with a letter", what, value);
  for (const char *p = value; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return crib_fail(err, 0, "%s `%s`: character `%c` not allowed in an nftables name (A-Z a-z 0-9 _ -)", what, value, c);
  }
  return 0;
}

static int parse_port(const char *text, unsigned *out) {
  unsigned long v;
  if (crib_parse_uint(text, 1, 65535, &v) < 0) return -1;
  *out = (unsigned)v;
  return 0;
}

/* PROTO:HOSTPORT:CONTAINERPORT[:HOSTIP], the host IP last because an IPv6 one has colons. */
static int add_port(struct crib_hostport_opts *o, const char *value, crib_err *err) {
  if (o->nports == CRIB_MAX_HOSTPORTS)
    return crib_fail(err, 0, "--hostport `%.40s`: at most %d host ports", value, CRIB_MAX_HOSTPORTS);
  char text[96];
  if (strlen(value) >= sizeof text) return crib_fail(err, 0, "--hostport `%.40s...`: too long", value);
  strcpy(text, value);
  struct crib_hostport *p = &o->ports[o->nports];
  memset(p, 0, sizeof *p);
  char *host_port = strchr(text, ':');
  char *container_port = host_port ? strchr(host_port + 1, ':') : NULL;
  if (container_port == NULL) return crib_fail(err, 0, "--hostport `%s`: expected PROTO:HOSTPORT:CONTAINERPORT[:HOSTIP]", value);
  *host_port++ = '\0';
  *container_port++ = '\0';
  char *host_ip = strchr(container_port, ':');
  if (host_ip != NULL) *host_ip++ = '\0';
  if (strcmp(text, "tcp") != 0 && strcmp(text, "udp") != 0 && strcmp(text, "sctp") != 0)
    return crib_fail(err, 0, "--hostport `%s`: protocol `%s` is not tcp, udp or sctp", value, text);
  strcpy(p->proto, text);
  if (parse_port(host_port, &p->host_port) < 0) return crib_fail(err, 0, "--hostport `%s`: host port `%s` is not 1-65535", value, host_port);
  if (parse_port(container_port, &p->container_port) < 0)
    return crib_fail(err, 0, "--hostport `%s`: container port `%s` is not 1-65535", value, container_port);
  if (host_ip != NULL) {
    if (inet_pton(AF_INET, host_ip, p->host_ip) == 1) p->host_family = AF_INET;
    else if (inet_pton(AF_INET6, host_ip, p->host_ip) == 1) p->host_family = AF_INET6;
    else return crib_fail(err, 0, "--hostport `%s`: host IP `%s` is not an IP address", value, host_ip);
  }
  o->nports++;
  return 0;
}

int crib_hostport_opt_set(struct crib_hostport_opts *o, const char *name, const char *value, crib_err *err) {
  if (strcmp(name, "nft-table") == 0) {
    if (check_ident(value, "--nft-table", err) < 0) return -1;
    o->table = value;
  } else if (strcmp(name, "hostport-chain") == 0) {
    /* Never one of the table's base chains: install flushes and remove deletes this chain. */
    if (check_ident(value, "--hostport-chain", err) < 0) return -1;
    if (strncmp(value, "hp-", 3) != 0) return crib_fail(err, 0, "--hostport-chain `%s`: a pod's chain is named hp-...", value);
    o->chain = value;
  } else if (strcmp(name, "nft-family") == 0) {
    int family = strcmp(value, "ip") == 0 ? AF_INET : strcmp(value, "ip6") == 0 ? AF_INET6 : 0;
    if (family == 0) return crib_fail(err, 0, "--nft-family `%s`: not ip or ip6", value);
    for (size_t i = 0; i < o->nfamilies; i++)
      if (o->families[i] == family) return crib_fail(err, 0, "--nft-family `%s` given twice", value);
    o->families[o->nfamilies++] = family; /* two distinct values at most: fits */
  } else if (strcmp(name, "hostport") == 0) return add_port(o, value, err);
  else return 1;
  return 0;
}

int crib_hostport_opts_check(const struct crib_hostport_opts *o, crib_err *err) {
  bool any = o->table != NULL || o->chain != NULL || o->nfamilies > 0 || o->nports > 0;
  if (!any) return 0;
  if (o->table == NULL || o->chain == NULL || o->nfamilies == 0)
    return crib_fail(err, 0, "host ports: --nft-table, --hostport-chain and --nft-family go together");
  for (size_t i = 0; i < o->nports; i++) {
    const struct crib_hostport *p = &o->ports[i];
    bool known = p->host_family == 0;
    for (size_t f = 0; f < o->nfamilies; f++) known = known || o->families[f] == p->host_family;
    if (!known)
      return crib_fail(err, 0, "host ports: host port %u has an %s host IP, but no --nft-family %s", p->host_port,
                       p->host_family == AF_INET ? "IPv4" : "IPv6", crib_nft_family(p->host_family));
  }
  return 0;
}
