/* linux.seccomp compiled with libseccomp. */
#ifndef CRIB_SECCOMP_FILTER_H
#define CRIB_SECCOMP_FILTER_H

#include <jansson.h>
#include <seccomp.h>

#include "crib-error.h"

/* Build (not load) the filter; *ctx stays NULL when seccomp is NULL. */
int crib_seccomp_compile(json_t *seccomp, scmp_filter_ctx *ctx, crib_err *err);
int crib_seccomp_load(scmp_filter_ctx ctx, crib_err *err);

#endif
