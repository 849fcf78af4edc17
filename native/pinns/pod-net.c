/* A pod's link to the node's bridge, made with rtnetlink in this one process (no `ip` runs):
 *   host:  veth <host-if> (mtu, master <bridge>) whose peer is created directly inside the
 *          pod's network namespace as eth0 (IFLA_NET_NS_FD), so no temporary name ever exists
 *          on the host; IPv6 off on it before it is up (see host_ipv6_off); then hairpin mode on
 *          the bridge port (a pod reaching its own hostPort is DNATed back out of the port it
 *          came in by), and up;
 *   pod:   the addresses on eth0 (IPv6 ones without DAD when asked: IPAM made them unique, and
 *          DAD would keep them unusable for about a second), eth0 and lo up, a default route per
 *          gateway.
 * The pod side goes through a second netlink socket opened inside the pod's namespace (setns is
 * fine here: this process has one thread), so the process itself stays in the host's namespace.
 * A veth of the same name left by an interrupted attach (a daemon crash) is replaced. Last, the
 * pod's host ports when it has any (host-ports.c). Any failure after the veth exists deletes it
 * again: nothing is left half-made. Detach removes the host ports first, then the veth. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "netlink.h"
#include "pinns.h"

#define LOOPBACK_IFINDEX 1

static const char *family_name(int family) { return family == AF_INET ? "IPv4" : "IPv6"; }

static int check_ifname(const char *name, const char *what, crib_err *err) {
  size_t len = strlen(name);
  if (len == 0 || len >= IFNAMSIZ || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return crib_fail(err, 0, "%s `%s`: an interface name has 1 to %d characters", what, name, IFNAMSIZ - 1);
  for (const char *p = name; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
          c == '.'))
      return crib_fail(err, 0, "%s `%s`: character `%c` not allowed in an interface name (A-Z a-z 0-9 _ . -)", what,
                       name, c);
  }
  return 0;
}

/* "10.88.0.5" or "fd88::5" into family + 16 bytes. */
static int parse_ip(const char *text, int *family, unsigned char out[16]) {
  memset(out, 0, 16);
  if (inet_pton(AF_INET, text, out) == 1) {
    *family = AF_INET;
    return 0;
  }
  if (inet_pton(AF_INET6, text, out) == 1) {
    *family = AF_INET6;
    return 0;
  }
  return -1;
}

static int add_addr(struct pod_net_opts *o, const char *value, crib_err *err) {
  if (o->naddrs == PINNS_MAX_POD_ADDRS) return crib_fail(err, 0, "--addr `%s`: at most %d addresses", value, PINNS_MAX_POD_ADDRS);
  char text[96];
  if (strlen(value) >= sizeof text) return crib_fail(err, 0, "--addr `%.40s...`: too long", value);
  strcpy(text, value);
  struct pod_addr *a = &o->addrs[o->naddrs];
  memset(a, 0, sizeof *a);
  char *opt = strchr(text, ',');
  if (opt != NULL) {
    *opt++ = '\0';
    if (strcmp(opt, "nodad") != 0) return crib_fail(err, 0, "--addr `%s`: unknown flag `%s` (only nodad)", value, opt);
    a->nodad = true;
  }
  char *slash = strchr(text, '/');
  if (slash == NULL) return crib_fail(err, 0, "--addr `%s`: expected IP/PREFIXLEN[,nodad]", value);
  *slash++ = '\0';
  if (parse_ip(text, &a->family, a->addr) < 0) return crib_fail(err, 0, "--addr `%s`: `%s` is not an IP address", value, text);
  unsigned long len;
  unsigned long max = a->family == AF_INET ? 32 : 128;
  if (crib_parse_uint(slash, 1, max, &len) < 0)
    return crib_fail(err, 0, "--addr `%s`: prefix length `%s` is not 1-%lu", value, slash, max);
  a->prefix = (unsigned char)len;
  if (a->nodad && a->family != AF_INET6) return crib_fail(err, 0, "--addr `%s`: nodad is for IPv6 addresses", value);
  o->naddrs++;
  return 0;
}

static int add_gw(struct pod_net_opts *o, const char *value, crib_err *err) {
  if (o->ngws == PINNS_MAX_POD_ADDRS) return crib_fail(err, 0, "--gw `%s`: at most %d gateways", value, PINNS_MAX_POD_ADDRS);
  struct pod_gw *g = &o->gws[o->ngws];
  if (parse_ip(value, &g->family, g->addr) < 0) return crib_fail(err, 0, "--gw `%s`: not an IP address", value);
  o->ngws++;
  return 0;
}

int pinns_pod_net_set(struct pod_net_opts *o, const char *name, const char *value, crib_err *err) {
  if (strcmp(name, "netns") == 0) o->netns = value;
  else if (strcmp(name, "bridge") == 0) {
    if (check_ifname(value, "--bridge", err) < 0) return -1;
    o->bridge = value;
  } else if (strcmp(name, "host-if") == 0) {
    if (check_ifname(value, "--host-if", err) < 0) return -1;
    o->host_if = value;
  } else if (strcmp(name, "mtu") == 0) {
    unsigned long mtu;
    if (crib_parse_uint(value, 68, 65535, &mtu) < 0) return crib_fail(err, 0, "--mtu `%s`: not a number 68-65535", value);
    o->mtu = (unsigned)mtu;
  } else if (strcmp(name, "addr") == 0) return add_addr(o, value, err);
  else if (strcmp(name, "gw") == 0) return add_gw(o, value, err);
  else {
    int r = pinns_hostports_set(&o->ports, name, value, err);
    if (r <= 0) return r;
    return crib_fail(err, 0, "unknown option `--%s`", name);
  }
  return 0;
}

int pinns_pod_net_check(const struct pod_net_opts *o, crib_err *err) {
  if (o->netns == NULL) return crib_fail(err, 0, "pod network: the network namespace (--netns) is required");
  if (o->bridge == NULL || o->host_if == NULL) return crib_fail(err, 0, "pod network: --bridge and --host-if are required");
  if (strcmp(o->host_if, o->bridge) == 0) return crib_fail(err, 0, "pod network: --host-if `%s` is the bridge's name", o->host_if);
  if (o->naddrs == 0) return crib_fail(err, 0, "pod network: at least one --addr is required");
  for (size_t i = 0; i < o->ngws; i++) {
    bool match = false;
    for (size_t j = 0; j < o->naddrs; j++) match = match || o->addrs[j].family == o->gws[i].family;
    if (!match) return crib_fail(err, 0, "pod network: %s gateway without an %s --addr", family_name(o->gws[i].family), family_name(o->gws[i].family));
    for (size_t j = 0; j < i; j++)
      if (o->gws[j].family == o->gws[i].family)
        return crib_fail(err, 0, "pod network: two %s gateways (one default route per family)", family_name(o->gws[i].family));
  }
  return pinns_hostports_check(&o->ports, err);
}

/* ---- netlink requests ---- */

static const struct nlattr *find_attr(const void *start, size_t len, uint16_t type) {
  size_t at = 0;
  while (at + NLA_HDRLEN <= len) {
    const struct nlattr *a = (const struct nlattr *)((const char *)start + at);
    if (a->nla_len < NLA_HDRLEN || at + a->nla_len > len) return NULL;
    if ((a->nla_type & NLA_TYPE_MASK) == type) return a;
    at += NLA_ALIGN(a->nla_len);
  }
  return NULL;
}

struct link_info {
  int index;
  char kind[32]; /* IFLA_INFO_KIND, "" when the link has none */
};

/* RTM_GETLINK by name. */
static int get_link(struct nl_sock *s, const char *name, const char *where, struct link_info *out, crib_err *err) {
  static struct nl_req r;
  static union {
    struct nlmsghdr hdr;
    char buf[NL_ANSWER_MAX];
  } ans;
  nl_req_init(&r, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
  nl_put_str(&r, IFLA_IFNAME, name);
  nl_put_u32(&r, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  if (nl_call(s, &r, &ans, sizeof ans, err, "RTM_GETLINK `%s` (%s)", name, where) < 0) return -1;
  if (ans.hdr.nlmsg_type != RTM_NEWLINK || ans.hdr.nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
    return crib_fail(err, EIO, "netlink RTM_GETLINK `%s` (%s): unexpected answer type %u", name, where, ans.hdr.nlmsg_type);
  const struct ifinfomsg *ifi = NLMSG_DATA(&ans.hdr);
  out->index = ifi->ifi_index;
  out->kind[0] = '\0';
  const char *attrs = (const char *)ifi + NLMSG_ALIGN(sizeof *ifi);
  size_t alen = ans.hdr.nlmsg_len - NLMSG_LENGTH(sizeof *ifi);
  const struct nlattr *li = find_attr(attrs, alen, IFLA_LINKINFO);
  if (li != NULL) {
    const struct nlattr *k = find_attr((const char *)li + NLA_HDRLEN, li->nla_len - NLA_HDRLEN, IFLA_INFO_KIND);
    if (k != NULL) {
      size_t klen = k->nla_len - NLA_HDRLEN;
      if (klen >= sizeof out->kind) klen = sizeof out->kind - 1;
      memcpy(out->kind, (const char *)k + NLA_HDRLEN, klen);
      out->kind[klen] = '\0';
    }
  }
  return 0;
}

/* RTM_DELLINK by name; a missing link is fine (returns 0), a found one returns 1. */
static int del_link(struct nl_sock *s, const char *name, const char *where, crib_err *err) {
  static struct nl_req r;
  nl_req_init(&r, RTM_DELLINK, 0, sizeof(struct ifinfomsg));
  nl_put_str(&r, IFLA_IFNAME, name);
  if (nl_call(s, &r, NULL, 0, err, "RTM_DELLINK `%s` (%s)", name, where) == 0) return 1;
  return err->errnum == ENODEV ? 0 : -1;
}

/* Created down: host_ipv6_off comes before the host end is up. */
static int create_veth(struct nl_sock *host, const struct pod_net_opts *o, int bridge_index, int nsfd, crib_err *err) {
  static struct nl_req r;
  struct ifinfomsg *ifi = nl_req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifinfomsg));
  ifi->ifi_family = AF_UNSPEC;
  nl_put_str(&r, IFLA_IFNAME, o->host_if);
  if (o->mtu != 0) nl_put_u32(&r, IFLA_MTU, o->mtu);
  nl_put_u32(&r, IFLA_MASTER, (uint32_t)bridge_index);
  nl_nest_begin(&r, IFLA_LINKINFO);
  nl_put_str(&r, IFLA_INFO_KIND, "veth");
  nl_nest_begin(&r, IFLA_INFO_DATA);
  nl_nest_begin(&r, VETH_INFO_PEER);
  (void)nl_reserve(&r, sizeof(struct ifinfomsg)); /* the peer's own (zeroed) ifinfomsg */
  nl_put_str(&r, IFLA_IFNAME, PINNS_POD_IF);
  if (o->mtu != 0) nl_put_u32(&r, IFLA_MTU, o->mtu);
  nl_put_u32(&r, IFLA_NET_NS_FD, (uint32_t)nsfd);
  nl_nest_end(&r);
  nl_nest_end(&r);
  nl_nest_end(&r);
  return nl_call(host, &r, NULL, 0, err, "RTM_NEWLINK veth `%s` (master `%s`, peer `%s` in `%s`)", o->host_if, o->bridge,
                 PINNS_POD_IF, o->netns);
}

/* The host end is a bridge port: it forwards frames, and needs no address of its own. With IPv6
 * on, going up gives it a link-local address, three routes in the host's tables, and MLD and DAD
 * traffic; every link deletion then walks the host's whole IPv6 route table, which so grew with
 * each pod (with 250 pods running, IPv6 address work and route walks were about a sixth of this
 * helper's time on each pod's start and removal). The pod's IPv6 is eth0's and the bridge's.
 * Nothing to do on a kernel without IPv6. */
static int host_ipv6_off(const char *host_if, crib_err *err) {
  char path[128];
  snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", host_if);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT && access("/proc/sys/net/ipv6", F_OK) < 0 ? 0 : crib_fail(err, errno, "open `%s`", path);
  if (crib_write_all(fd, "1", 1) < 0) {
    int saved = errno;
    (void)close(fd); /* reporting the write failure */
    return crib_fail(err, saved, "write 1 to `%s`", path);
  }
  if (close(fd) < 0) return crib_fail(err, errno, "close `%s`", path);
  return 0;
}

/* Hairpin on the bridge port, as `ip link set dev X type bridge_slave hairpin on` sets it, and
 * the port up. */
static int set_hairpin_up(struct nl_sock *host, const char *host_if, crib_err *err) {
  static struct nl_req r;
  struct ifinfomsg *ifi = nl_req_init(&r, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  nl_put_str(&r, IFLA_IFNAME, host_if);
  nl_nest_begin(&r, IFLA_LINKINFO);
  nl_nest_begin(&r, IFLA_INFO_SLAVE_DATA);
  nl_put_u8(&r, IFLA_BRPORT_MODE, 1);
  nl_nest_end(&r);
  nl_nest_end(&r);
  return nl_call(host, &r, NULL, 0, err, "RTM_NEWLINK `%s` bridge port hairpin on, up", host_if);
}

static int link_up(struct nl_sock *s, int index, const char *name, crib_err *err) {
  static struct nl_req r;
  struct ifinfomsg *ifi = nl_req_init(&r, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
  ifi->ifi_index = index;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return nl_call(s, &r, NULL, 0, err, "RTM_NEWLINK `%s` up (pod)", name);
}

static int add_address(struct nl_sock *pod, int index, const struct pod_addr *a, crib_err *err) {
  static struct nl_req r;
  struct ifaddrmsg *ifa = nl_req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifaddrmsg));
  ifa->ifa_family = (unsigned char)a->family;
  ifa->ifa_prefixlen = a->prefix;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = (unsigned)index;
  ifa->ifa_flags = a->nodad ? IFA_F_NODAD : 0;
  size_t len = a->family == AF_INET ? 4 : 16;
  nl_put(&r, IFA_LOCAL, a->addr, len);
  nl_put(&r, IFA_ADDRESS, a->addr, len);
  if (a->nodad) nl_put_u32(&r, IFA_FLAGS, IFA_F_NODAD);
  char text[INET6_ADDRSTRLEN] = "?";
  if (inet_ntop(a->family, a->addr, text, sizeof text) == NULL) strcpy(text, "?");
  return nl_call(pod, &r, NULL, 0, err, "RTM_NEWADDR %s/%u on `%s` (pod)", text, a->prefix, PINNS_POD_IF);
}

static int add_default_route(struct nl_sock *pod, int index, const struct pod_gw *g, crib_err *err) {
  static struct nl_req r;
  struct rtmsg *rt = nl_req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct rtmsg));
  rt->rtm_family = (unsigned char)g->family;
  rt->rtm_dst_len = 0;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  nl_put(&r, RTA_GATEWAY, g->addr, g->family == AF_INET ? 4 : 16);
  nl_put_u32(&r, RTA_OIF, (uint32_t)index);
  char text[INET6_ADDRSTRLEN] = "?";
  if (inet_ntop(g->family, g->addr, text, sizeof text) == NULL) strcpy(text, "?");
  return nl_call(pod, &r, NULL, 0, err, "RTM_NEWROUTE default via %s dev `%s` (pod)", text, PINNS_POD_IF);
}

/* Open the namespace file and make sure it is a network namespace. */
static int open_netns(const char *path, crib_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open `%s`", path);
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET) {
    int saved = errno;
    (void)close(fd); /* reporting the failure below */
    if (type < 0) return crib_fail(err, saved, "ioctl NS_GET_NSTYPE `%s` (is it a pinned network namespace?)", path);
    return crib_fail(err, 0, "`%s` is a namespace, but not a network namespace", path);
  }
  return fd;
}

/* A netlink socket inside the namespace `nsfd`; the process returns to the host's namespace. */
static int open_in_netns(struct nl_sock *s, int nsfd, const char *path, crib_err *err) {
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return crib_fail(err, errno, "open `/proc/self/ns/net`");
  int ret = 0;
  if (setns(nsfd, CLONE_NEWNET) < 0) ret = crib_fail(err, errno, "setns `%s`", path);
  else {
    ret = nl_open(s, "pod", err);
    if (setns(self, CLONE_NEWNET) < 0) {
      /* Staying in the pod's namespace would create the veth in the wrong place: give up. */
      if (ret == 0) nl_close(s);
      ret = crib_fail(err, errno, "setns back to the host's network namespace");
    }
  }
  if (close(self) < 0 && ret == 0) {
    nl_close(s);
    ret = crib_fail(err, errno, "close `/proc/self/ns/net`");
  }
  return ret;
}

static int configure_pod(struct nl_sock *pod, const struct pod_net_opts *o, crib_err *err) {
  struct link_info eth0;
  if (get_link(pod, PINNS_POD_IF, "pod", &eth0, err) < 0) return -1;
  for (size_t i = 0; i < o->naddrs; i++)
    if (add_address(pod, eth0.index, &o->addrs[i], err) < 0) return -1;
  if (link_up(pod, eth0.index, PINNS_POD_IF, err) < 0 || link_up(pod, LOOPBACK_IFINDEX, "lo", err) < 0) return -1;
  for (size_t i = 0; i < o->ngws; i++)
    if (add_default_route(pod, eth0.index, &o->gws[i], err) < 0) return -1;
  return 0;
}

int pinns_pod_net_attach(const struct pod_net_opts *o, crib_err *err) {
  if (pinns_pod_net_check(o, err) < 0) return -1;
  struct nl_sock host = {.fd = -1}, pod = {.fd = -1};
  int nsfd = -1, ret = -1;
  bool made = false;
  if (nl_open(&host, "host", err) < 0) return -1;
  if ((nsfd = open_netns(o->netns, err)) < 0) goto out;
  if (open_in_netns(&pod, nsfd, o->netns, err) < 0) goto out;

  struct link_info bridge;
  if (get_link(&host, o->bridge, "host", &bridge, err) < 0) {
    crib_err_wrap(err, "bridge `%s`", o->bridge);
    goto out;
  }
  if (strcmp(bridge.kind, "bridge") != 0) {
    crib_fail(err, 0, "`%s` is a %s, not a bridge", o->bridge, bridge.kind[0] ? bridge.kind : "link without a kind");
    goto out;
  }
  if (create_veth(&host, o, bridge.index, nsfd, err) < 0) {
    if (err->errnum != EEXIST) goto out;
    /* Left by an attach a crash interrupted: replace it. Deleting the host end takes its peer
     * along; an eth0 alone in the pod's namespace (its host end deleted) goes by name. */
    crib_err first = *err;
    if (del_link(&host, o->host_if, "host", err) < 0 || del_link(&pod, PINNS_POD_IF, "pod", err) < 0) goto out;
    if (create_veth(&host, o, bridge.index, nsfd, err) < 0) {
      crib_err_wrap(err, "after replacing what an earlier attach left (%s)", first.msg);
      goto out;
    }
  }
  made = true;
  if (host_ipv6_off(o->host_if, err) < 0 || set_hairpin_up(&host, o->host_if, err) < 0 || configure_pod(&pod, o, err) < 0 ||
      pinns_hostports_install(&o->ports, o, err) < 0)
    goto out;
  ret = 0;

out:
  if (ret < 0 && made) {
    crib_err ignored = {0}; /* the first error is the one worth reporting */
    (void)del_link(&host, o->host_if, "host, undoing", &ignored);
  }
  nl_close(&pod);
  nl_close(&host);
  if (nsfd >= 0) (void)close(nsfd); /* read-only namespace fd */
  return ret;
}

int pinns_pod_net_detach(const struct pod_net_opts *o, crib_err *err) {
  const char *host_if = o->host_if;
  if (host_if == NULL) return crib_fail(err, 0, "pod-net detach: --host-if is required");
  if (check_ifname(host_if, "--host-if", err) < 0) return -1;
  if (pinns_hostports_check(&o->ports, err) < 0) return -1;
  if (o->ports.parsed.nports > 0) return crib_fail(err, 0, "pod-net detach: --hostport is for attach");
  /* Rules first: DNAT to a pod whose veth is gone would only blackhole the port. A failure keeps
   * the veth, so the daemon retries both. Their removal is reported on stdout at once: the daemon
   * answers StopPodSandbox then, and lets the veth delete (an RCU wait) finish in the background. */
  if (pinns_hostports_remove(&o->ports, err) < 0) return -1;
  if (o->ports.parsed.table != NULL && (fputs(PINNS_PORTS_REMOVED "\n", stdout) == EOF || fflush(stdout) == EOF))
    return crib_fail(err, errno, "write `%s` to stdout", PINNS_PORTS_REMOVED);
  struct nl_sock host = {.fd = -1};
  if (nl_open(&host, "host", err) < 0) return -1;
  int ret = 0;
  struct link_info link;
  if (get_link(&host, host_if, "host", &link, err) < 0) {
    ret = err->errnum == ENODEV ? 0 : -1; /* gone already: detached */
  } else if (strcmp(link.kind, "veth") != 0) {
    /* The name comes from the daemon; refusing anything else keeps a mistake from deleting a
     * host interface. */
    ret = crib_fail(err, 0, "`%s` is a %s, not a pod's veth: not deleting it", host_if, link.kind[0] ? link.kind : "link without a kind");
  } else {
    static struct nl_req r;
    struct ifinfomsg *ifi = nl_req_init(&r, RTM_DELLINK, 0, sizeof(struct ifinfomsg));
    ifi->ifi_index = link.index;
    if (nl_call(&host, &r, NULL, 0, err, "RTM_DELLINK `%s` (host)", host_if) < 0 && err->errnum != ENODEV) ret = -1;
  }
  nl_close(&host);
  return ret;
}
