/* linux.sysctl: kernel parameters of the container's namespaces, written through a private
 * procfs handle (procfs.h), never through the container's /proc. Which namespace a /proc/sys
 * entry belongs to follows the writing process (it is in the container's namespaces), not the
 * procfs instance, so the handle reaches exactly the container's own parameters. */
#ifndef CRIB_SYSCTLS_H
#define CRIB_SYSCTLS_H

#include <jansson.h>

#include "crib-error.h"

/* Write every linux.sysctl entry; the first failure names the key. */
int crib_sysctls_apply(json_t *spec, int proc, crib_err *err);

#endif
