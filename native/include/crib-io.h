/* Plain-fd I/O loops shared by every native binary. */
#ifndef CRIB_IO_H
#define CRIB_IO_H

#include <stddef.h>

/* write(2) until all of buf is written, retrying EINTR. 0, or -1 with errno set (EAGAIN on a
 * non-blocking fd included: callers of this want everything or a failure). */
int crib_write_all(int fd, const void *buf, size_t len);

#endif
