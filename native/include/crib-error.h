/* The error contract of crib's native code (after crun's): every fallible function takes a
 * crib_err out-parameter, fills it with a message that names the syscall and quotes its argument,
 * and returns -1. Callers add context with crib_err_wrap; main() prints
 * "<prog>: <message>" on stderr and exits non-zero. */
#ifndef CRIB_ERROR_H
#define CRIB_ERROR_H

#include <stddef.h>

typedef struct crib_err {
  int errnum;       /* errno of the failure, 0 when it was not a syscall */
  char msg[2048];
} crib_err;

/* Record "<fmt ...>: <strerror(errnum)>" (or just fmt when errnum is 0); returns -1. */
int crib_fail(crib_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an already recorded error with more context ("<fmt ...>: <old message>"); returns -1. */
int crib_err_wrap(crib_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print "<prog>: <message>" to stderr. */
void crib_err_print(const char *prog, const crib_err *err);

#endif
