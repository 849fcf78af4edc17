/* A pod's host ports (hostPort -> podIP:containerPort DNAT) in the daemon's nftables table.
 * Layout (see src/network/nft-table.ts): the table's `hostports` chain holds one
 * `jump <pod chain>` per pod; the pod chain holds its DNAT rules.
 *
 * The rules go through libnftables (the library `nft` itself is): the same rule text as the
 * command, parsed and committed over nftables netlink in this process, as one transaction, so a
 * failure leaves the ruleset as it was. The library is loaded with dlopen, so that a node without
 * it gets an error naming the package (Debian's libnftables1) rather than the loader's.
 *
 * Install replaces what the pod had (the jumps to its chain, found by handle, are deleted and
 * the chain flushed and refilled); remove deletes the jumps and the chain; a missing table on
 * remove means nothing of ours is installed. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostports.h"

#define NFT_LIB "libnftables.so.1"
/* Our scripts: per family a few chain commands, one rule per port (about 150 bytes each). */
#define SCRIPT_MAX (512 * 1024)
/* Jumps to one pod chain: one normally; more only if something went very wrong. */
#define MAX_JUMPS 64

/* ---- libnftables, loaded on first use ---- */

static struct {
  void *lib;
  __typeof__(&nft_ctx_new) ctx_new;
  __typeof__(&nft_ctx_free) ctx_free;
  __typeof__(&nft_ctx_output_set_flags) output_set_flags;
  __typeof__(&nft_ctx_buffer_output) buffer_output;
  __typeof__(&nft_ctx_buffer_error) buffer_error;
  __typeof__(&nft_ctx_get_output_buffer) get_output;
  __typeof__(&nft_ctx_get_error_buffer) get_error;
  __typeof__(&nft_run_cmd_from_buffer) run;
} nftlib;

static int load_sym(void **slot, const char *name, crib_err *err) {
  (void)dlerror();
  *slot = dlsym(nftlib.lib, name);
  if (*slot == NULL) {
    const char *why = dlerror();
    return crib_fail(err, 0, "dlsym `%s` in %s: %s", name, NFT_LIB, why ? why : "not found");
  }
  return 0;
}

static int load_nftables(crib_err *err) {
  if (nftlib.lib != NULL) return 0;
  nftlib.lib = dlopen(NFT_LIB, RTLD_NOW | RTLD_LOCAL);
  if (nftlib.lib == NULL) {
    const char *why = dlerror();
    return crib_fail(err, 0, "dlopen `%s`: %s (Debian's libnftables1, which nftables depends on, provides it)", NFT_LIB,
                     why ? why : "failed");
  }
  /* dlsym gives an object pointer; POSIX guarantees it converts to the function's type. */
  if (load_sym((void **)&nftlib.ctx_new, "nft_ctx_new", err) < 0 || load_sym((void **)&nftlib.ctx_free, "nft_ctx_free", err) < 0 ||
      load_sym((void **)&nftlib.output_set_flags, "nft_ctx_output_set_flags", err) < 0 ||
      load_sym((void **)&nftlib.buffer_output, "nft_ctx_buffer_output", err) < 0 ||
      load_sym((void **)&nftlib.buffer_error, "nft_ctx_buffer_error", err) < 0 ||
      load_sym((void **)&nftlib.get_output, "nft_ctx_get_output_buffer", err) < 0 ||
      load_sym((void **)&nftlib.get_error, "nft_ctx_get_error_buffer", err) < 0 ||
      load_sym((void **)&nftlib.run, "nft_run_cmd_from_buffer", err) < 0) {
    (void)dlclose(nftlib.lib); /* failing anyway */
    nftlib.lib = NULL;
    return -1;
  }
  return 0;
}

static struct nft_ctx *open_ctx(crib_err *err) {
  if (load_nftables(err) < 0) return NULL;
  struct nft_ctx *ctx = nftlib.ctx_new(NFT_CTX_DEFAULT);
  if (ctx == NULL) {
    crib_fail(err, ENOMEM, "nft_ctx_new");
    return NULL;
  }
  /* Listings and errors into memory, not our stdout/stderr; handles in listings. */
  if (nftlib.buffer_output(ctx) != 0 || nftlib.buffer_error(ctx) != 0) {
    nftlib.ctx_free(ctx);
    crib_fail(err, ENOMEM, "nft_ctx_buffer_output/nft_ctx_buffer_error");
    return NULL;
  }
  nftlib.output_set_flags(ctx, NFT_CTX_OUTPUT_HANDLE);
  return ctx;
}

/* Run commands; on failure err holds nftables' own message on one line, errnum ENOENT when it
 * is about a missing object (the only errno the caller acts on). */
static int run_nft(struct nft_ctx *ctx, const char *cmds, const char *what, crib_err *err) {
  int rc = nftlib.run(ctx, cmds);
  const char *msg = nftlib.get_error(ctx);
  if (rc == 0) return 0;
  /* Its message is "Error: <why>\n<the command>\n<carets under the culprit>\n" per error: kept
   * on one line, without the carets. */
  char text[1024] = "";
  size_t len = 0;
  for (const char *line = msg ? msg : ""; *line != '\0' && len + 1 < sizeof text;) {
    size_t n = strcspn(line, "\n");
    bool marks = strspn(line, " \t^~") >= n;
    if (!marks) {
      int w = snprintf(text + len, sizeof text - len, "%s%.*s", len ? "; " : "", (int)n, line);
      if (w < 0) break;
      len += (size_t)w < sizeof text - len ? (size_t)w : sizeof text - len - 1;
    }
    line += n + (line[n] == '\n');
  }
  if (len == 0) snprintf(text, sizeof text, "failed without a message");
  crib_fail(err, 0, "nftables %s: %s", what, text);
  err->errnum = strstr(text, "No such file or directory") != NULL ? ENOENT : 0;
  return -1;
}

/* Handles of the `jump <chain>` rules in the table's hostports chain. */
static int find_jumps(struct nft_ctx *ctx, int family, const struct crib_hostport_opts *o, unsigned long *handles, size_t *n,
                      crib_err *err) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "list chain %s %s hostports", crib_nft_family(family), o->table); /* names ≤ 32: fits */
  *n = 0;
  if (run_nft(ctx, cmd, cmd, err) < 0) return -1;
  const char *listing = nftlib.get_output(ctx);
  char needle[64];
  snprintf(needle, sizeof needle, "jump %s # handle ", o->chain);
  for (const char *at = listing ? strstr(listing, needle) : NULL; at != NULL; at = strstr(at, needle)) {
    at += strlen(needle);
    char *end;
    errno = 0;
    unsigned long h = strtoul(at, &end, 10);
    if (errno != 0 || end == at) return crib_fail(err, 0, "nftables %s: unreadable handle after `%s`", cmd, needle);
    if (*n == MAX_JUMPS) return crib_fail(err, 0, "nftables %s: more than %d jumps to %s", cmd, MAX_JUMPS, o->chain);
    handles[(*n)++] = h;
  }
  return 0;
}

struct script {
  char *buf;
  size_t len;
  bool overflow;
};

static void add_line(struct script *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(struct script *s, const char *fmt, ...) {
  if (s->overflow) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(s->buf + s->len, SCRIPT_MAX - s->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n + 1 >= SCRIPT_MAX - s->len) s->overflow = true;
  else {
    s->len += (size_t)n;
    s->buf[s->len++] = '\n';
    s->buf[s->len] = '\0';
  }
}

/* The pod's chain in one family: replaced by `ports` (install) or deleted (ports NULL). */
static int family_script(struct nft_ctx *ctx, struct script *s, int family, const struct crib_hostport_opts *o,
                         const unsigned char *pod_ip, bool install, crib_err *err) {
  unsigned long handles[MAX_JUMPS];
  size_t n;
  const char *f = crib_nft_family(family);
  if (find_jumps(ctx, family, o, handles, &n, err) < 0) {
    if (!install && err->errnum == ENOENT) return 0; /* no table: nothing of ours is installed */
    return -1;
  }
  for (size_t i = 0; i < n; i++) add_line(s, "delete rule %s %s hostports handle %lu", f, o->table, handles[i]);
  /* `add` first: flushing and deleting a chain that is not there is then no error. */
  add_line(s, "add chain %s %s %s", f, o->table, o->chain);
  add_line(s, "flush chain %s %s %s", f, o->table, o->chain);
  size_t rules = 0;
  if (install && pod_ip != NULL) {
    char pod[INET6_ADDRSTRLEN];
    if (inet_ntop(family, pod_ip, pod, sizeof pod) == NULL) return crib_fail(err, errno, "inet_ntop (pod address)");
    for (size_t i = 0; i < o->nports; i++) {
      const struct crib_hostport *p = &o->ports[i];
      if (p->host_family != 0 && p->host_family != family) continue;
      char daddr[INET6_ADDRSTRLEN + 16] = "";
      if (p->host_family != 0) {
        char host[INET6_ADDRSTRLEN];
        if (inet_ntop(family, p->host_ip, host, sizeof host) == NULL) return crib_fail(err, errno, "inet_ntop (host IP)");
        snprintf(daddr, sizeof daddr, "%s daddr %s ", f, host);
      }
      add_line(s, family == AF_INET ? "add rule %s %s %s %s%s dport %u dnat to %s:%u" : "add rule %s %s %s %s%s dport %u dnat to [%s]:%u",
               f, o->table, o->chain, daddr, p->proto, p->host_port, pod, p->container_port);
      rules++;
    }
  }
  if (rules > 0) add_line(s, "add rule %s %s hostports jump %s", f, o->table, o->chain);
  else add_line(s, "delete chain %s %s %s", f, o->table, o->chain);
  return 0;
}

/* Install (pod addresses given, one per family at most) or remove (ips NULL). */
static int apply(const struct crib_hostport_opts *o, const struct pod_ips *ips, crib_err *err) {
  struct nft_ctx *ctx = open_ctx(err);
  if (ctx == NULL) return -1;
  int ret = -1;
  struct script s = {.buf = malloc(SCRIPT_MAX)};
  if (s.buf == NULL) {
    crib_fail(err, ENOMEM, "malloc %d bytes (nftables script)", SCRIPT_MAX);
    goto out;
  }
  s.buf[0] = '\0';
  for (size_t f = 0; f < o->nfamilies; f++) {
    const unsigned char *pod_ip = NULL;
    for (size_t i = 0; ips != NULL && i < ips->n; i++)
      if (ips->family[i] == o->families[f]) pod_ip = ips->addr[i];
    if (family_script(ctx, &s, o->families[f], o, pod_ip, ips != NULL, err) < 0) goto out;
  }
  if (s.overflow) {
    crib_fail(err, 0, "host ports of chain %s: the nftables script exceeds %d bytes", o->chain, SCRIPT_MAX);
    goto out;
  }
  /* One transaction for every family: the pod's old rules are replaced by the new atomically. */
  if (s.len > 0 && run_nft(ctx, s.buf, ips != NULL ? "installing the host ports" : "removing the host ports", err) < 0) goto out;
  ret = 0;
out:
  free(s.buf);
  nftlib.ctx_free(ctx);
  return ret;
}

int hostports_install(const struct crib_hostport_opts *o, const struct pod_ips *ips, crib_err *err) {
  if (o->table == NULL) return 0;
  if (apply(o, ips, err) < 0) return crib_err_wrap(err, "host ports in table %s", o->table);
  return 0;
}

int hostports_remove(const struct crib_hostport_opts *o, crib_err *err) {
  if (o->table == NULL) return 0;
  if (apply(o, NULL, err) < 0) return crib_err_wrap(err, "host ports in table %s", o->table);
  return 0;
}
