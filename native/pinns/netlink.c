/* rtnetlink requests, one at a time, each acknowledged: see netlink.h. */
#include "netlink.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

int nl_open(struct nl_sock *s, const char *where, crib_err *err) {
  s->seq = 0;
  s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s->fd < 0) return crib_fail(err, errno, "socket AF_NETLINK NETLINK_ROUTE (%s)", where);
  int one = 1;
  /* The kernel's reason for a refusal ("Permission denied" alone rarely says which part). Old
   * kernels lack the option: then errors carry only errno. */
  if (setsockopt(s->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) < 0 && errno != ENOPROTOOPT) {
    int saved = errno;
    nl_close(s);
    return crib_fail(err, saved, "setsockopt NETLINK_EXT_ACK (%s)", where);
  }
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(s->fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int saved = errno;
    nl_close(s);
    return crib_fail(err, saved, "bind netlink socket (%s)", where);
  }
  return 0;
}

void nl_close(struct nl_sock *s) {
  if (s->fd >= 0) (void)close(s->fd); /* a socket we only read acks from: nothing to lose */
  s->fd = -1;
}

void *nl_req_init(struct nl_req *r, uint16_t type, uint16_t flags, size_t hdrlen) {
  memset(r, 0, sizeof *r);
  r->u.hdr.nlmsg_len = NLMSG_LENGTH(0);
  r->u.hdr.nlmsg_type = type;
  r->u.hdr.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
  return nl_reserve(r, hdrlen);
}

void *nl_reserve(struct nl_req *r, size_t len) {
  size_t at = NLMSG_ALIGN(r->u.hdr.nlmsg_len);
  if (r->overflow || at + NLMSG_ALIGN(len) > sizeof r->u.buf) {
    r->overflow = 1;
    return NULL;
  }
  r->u.hdr.nlmsg_len = (uint32_t)(at + NLMSG_ALIGN(len));
  return r->u.buf + at; /* already zero: nl_req_init cleared the whole buffer */
}

void nl_put(struct nl_req *r, uint16_t type, const void *data, size_t len) {
  struct nlattr *a = nl_reserve(r, NLA_HDRLEN + len);
  if (a == NULL) return;
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  if (len > 0) memcpy((char *)a + NLA_HDRLEN, data, len);
}

void nl_put_u32(struct nl_req *r, uint16_t type, uint32_t v) { nl_put(r, type, &v, sizeof v); }
void nl_put_u8(struct nl_req *r, uint16_t type, uint8_t v) { nl_put(r, type, &v, sizeof v); }
void nl_put_str(struct nl_req *r, uint16_t type, const char *s) { nl_put(r, type, s, strlen(s) + 1); }

void nl_nest_begin(struct nl_req *r, uint16_t type) {
  if (r->depth == NL_MAX_NEST) {
    r->overflow = 1;
    return;
  }
  size_t at = NLMSG_ALIGN(r->u.hdr.nlmsg_len);
  struct nlattr *a = nl_reserve(r, NLA_HDRLEN);
  if (a == NULL) return;
  a->nla_type = (uint16_t)(type | NLA_F_NESTED);
  r->nest[r->depth++] = at;
}

void nl_nest_end(struct nl_req *r) {
  if (r->overflow || r->depth == 0) {
    r->overflow = 1;
    return;
  }
  size_t at = r->nest[--r->depth];
  struct nlattr *a = (struct nlattr *)(r->u.buf + at);
  a->nla_len = (uint16_t)(r->u.hdr.nlmsg_len - at);
}

/* The extended ack's text, when the kernel sent one after the echoed request header. */
static const char *extack_msg(const struct nlmsghdr *h, const struct nlmsgerr *e) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return NULL;
  /* With NLM_F_CAPPED the echo is the request's header only; otherwise the whole request. */
  size_t echo = (h->nlmsg_flags & NLM_F_CAPPED) ? sizeof *e : sizeof *e - sizeof e->msg + e->msg.nlmsg_len;
  size_t at = NLMSG_HDRLEN + NLMSG_ALIGN(echo);
  while (at + NLA_HDRLEN <= h->nlmsg_len) {
    const struct nlattr *a = (const struct nlattr *)((const char *)h + at);
    if (a->nla_len < NLA_HDRLEN || at + a->nla_len > h->nlmsg_len) return NULL;
    size_t plen = a->nla_len - NLA_HDRLEN;
    const char *p = (const char *)a + NLA_HDRLEN;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && plen > 0 && p[plen - 1] == '\0') return p;
    at += NLA_ALIGN(a->nla_len);
  }
  return NULL;
}

int nl_call(struct nl_sock *s, struct nl_req *r, void *answer, size_t answer_size, crib_err *err,
            const char *what, ...) {
  char name[512];
  va_list ap;
  va_start(ap, what);
  int n = vsnprintf(name, sizeof name, what, ap);
  va_end(ap);
  if (n < 0) name[0] = '\0';
  if (r->overflow || r->depth != 0) return crib_fail(err, EMSGSIZE, "netlink %s: request does not fit %d bytes", name, NL_REQ_MAX);

  uint32_t seq = ++s->seq;
  r->u.hdr.nlmsg_seq = seq;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t sent;
  do {
    sent = sendto(s->fd, r->u.buf, r->u.hdr.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return crib_fail(err, errno, "netlink %s: sendto", name);
  if ((size_t)sent != r->u.hdr.nlmsg_len) return crib_fail(err, EIO, "netlink %s: short sendto", name);

  static union {
    struct nlmsghdr hdr;
    char buf[NL_ANSWER_MAX];
  } in;
  bool answered = answer == NULL;
  for (;;) {
    ssize_t got;
    do {
      got = recv(s->fd, in.buf, sizeof in.buf, MSG_TRUNC);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return crib_fail(err, errno, "netlink %s: recv", name);
    if ((size_t)got > sizeof in.buf)
      return crib_fail(err, EMSGSIZE, "netlink %s: answer of %zd bytes exceeds %d", name, got, NL_ANSWER_MAX);
    size_t len = (size_t)got;
    for (struct nlmsghdr *h = &in.hdr; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue; /* not ours (cannot happen on a private socket) */
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
          return crib_fail(err, EIO, "netlink %s: truncated acknowledgement", name);
        const struct nlmsgerr *e = NLMSG_DATA(h);
        if (e->error == 0) {
          if (!answered) return crib_fail(err, EIO, "netlink %s: acknowledged without an answer", name);
          return 0;
        }
        int code = -e->error;
        const char *why = extack_msg(h, e);
        if (why != NULL) {
          crib_fail(err, 0, "netlink %s: %s (kernel: %s)", name, strerror(code), why);
          err->errnum = code;
          return -1;
        }
        return crib_fail(err, code, "netlink %s", name);
      }
      if (!answered) {
        if (h->nlmsg_len > answer_size)
          return crib_fail(err, EMSGSIZE, "netlink %s: answer of %u bytes exceeds %zu", name, h->nlmsg_len, answer_size);
        memcpy(answer, h, h->nlmsg_len);
        answered = true;
      }
    }
    if (len != 0) return crib_fail(err, EIO, "netlink %s: malformed answer", name);
  }
}
