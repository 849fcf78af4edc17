/* Passing a file descriptor over a unix socket (SCM_RIGHTS), shared by the binaries that hand
 * one on: crib-runtime's sync channel and console socket, crib-pinns' port-forward handoff. */
#ifndef CRIB_FD_PASSING_H
#define CRIB_FD_PASSING_H

#include <stddef.h>
#include <sys/types.h>

/* sendmsg of `len` bytes of `buf` on `sock`, with `fd` attached as SCM_RIGHTS unless it is -1.
 * Retries on EINTR, never raises SIGPIPE. Returns the bytes sent, or -1 with errno set. A stream
 * socket carries ancillary data only with at least one byte of payload. */
ssize_t crib_send_with_fd(int sock, const void *buf, size_t len, int fd);

#endif
