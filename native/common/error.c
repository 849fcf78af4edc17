#include "crib-error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int crib_fail(crib_err *err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (errnum != 0 && (size_t)n < sizeof err->msg)
    snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(errnum));
  err->errnum = errnum;
  return -1;
}

int crib_err_wrap(crib_err *err, const char *fmt, ...) {
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  size_t plen = strnlen(prefix, sizeof prefix - 1);
  size_t olen = strnlen(err->msg, sizeof err->msg - 1);
  /* "<prefix>: <old>", cutting the old message's tail when the whole does not fit. */
  if (plen + 2 >= sizeof err->msg) return -1;
  if (plen + 2 + olen >= sizeof err->msg) olen = sizeof err->msg - plen - 3;
  memmove(err->msg + plen + 2, err->msg, olen);
  memcpy(err->msg, prefix, plen);
  err->msg[plen] = ':';
  err->msg[plen + 1] = ' ';
  err->msg[plen + 2 + olen] = '\0';
  return -1;
}

void crib_err_print(const char *prog, const crib_err *err) {
  fprintf(stderr, "%s: %s\n", prog, err->msg);
}
