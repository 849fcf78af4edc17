/* A minimal rtnetlink client: one request at a time, every request acknowledged (NLM_F_ACK) and
 * its answer checked, messages built in a fixed buffer whose every append is bounds-checked.
 * Errors name the request and carry the kernel's extended-ack text when it sends one. */
#ifndef CRIB_PINNS_NETLINK_H
#define CRIB_PINNS_NETLINK_H

#include <linux/netlink.h>
#include <stddef.h>
#include <stdint.h>

#include "crib-error.h"

/* Our requests are a few hundred bytes; answers (one link, one ack with its echo) a few KiB. */
#define NL_REQ_MAX 1024
#define NL_ANSWER_MAX 16384
#define NL_MAX_NEST 4

struct nl_sock {
  int fd;
  uint32_t seq;
};

struct nl_req {
  union {
    struct nlmsghdr hdr;
    char buf[NL_REQ_MAX];
  } u;
  /* Open nests: offsets of their struct nlattr, closed by nl_nest_end. */
  size_t nest[NL_MAX_NEST];
  int depth;
  /* Set by the first append that did not fit; reported by nl_call, so builders need not check
   * every append. */
  int overflow;
};

/* NETLINK_ROUTE socket in the calling thread's network namespace; `where` names it in errors. */
int nl_open(struct nl_sock *s, const char *where, crib_err *err);
void nl_close(struct nl_sock *s);

/* Start a request: header, then `hdrlen` bytes of the family header (ifinfomsg, ifaddrmsg, ...)
 * which the caller fills through the returned pointer (zeroed). */
void *nl_req_init(struct nl_req *r, uint16_t type, uint16_t flags, size_t hdrlen);
void nl_put(struct nl_req *r, uint16_t type, const void *data, size_t len);
void nl_put_u32(struct nl_req *r, uint16_t type, uint32_t v);
void nl_put_u8(struct nl_req *r, uint16_t type, uint8_t v);
void nl_put_str(struct nl_req *r, uint16_t type, const char *s);
/* Reserve `len` zeroed bytes (a nested family header, as the veth peer's ifinfomsg) and return
 * them, or NULL on overflow. */
void *nl_reserve(struct nl_req *r, size_t len);
void nl_nest_begin(struct nl_req *r, uint16_t type);
void nl_nest_end(struct nl_req *r);

/* Send the request and wait for its acknowledgement. Returns 0, or -1 with err set to
 * "<what>: <strerror>[ (kernel: <extack>)]" and err->errnum the kernel's errno. With `answer`
 * (size `answer_size`), the first non-ack message of the reply is copied there (a GET's). */
int nl_call(struct nl_sock *s, struct nl_req *r, void *answer, size_t answer_size, crib_err *err,
            const char *what, ...) __attribute__((format(printf, 6, 7)));

#endif
