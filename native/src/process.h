/* The OCI `process` applied to the calling process just before execve: rlimits, oom score,
 * user and groups, capabilities, umask, no_new_privs, and finding the program. */
#ifndef CRIB_PROCESS_H
#define CRIB_PROCESS_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "crib-error.h"

int crib_process_rlimits(json_t *process, crib_err *err);

/* Write oomScoreAdj through the procfs handle proc (procfs.h). Lowering it needs
 * CAP_SYS_RESOURCE: when refused, the current value stays and a warning lands in warn (empty
 * otherwise); that is never an error. */
int crib_process_oom_score(json_t *process, int proc, char *warn, size_t warn_n, crib_err *err);

/* Groups, gid, uid, then the five capability sets (warnings for unknown caps go to warn). */
int crib_process_identity(json_t *process, char *warn, size_t warn_n, crib_err *err);

/* Which LSMs the host has. Probed by the runtime itself, before it forks anything that enters a
 * container's mount namespace: there /sys is the container's, and a container able to mount over
 * it (a tmpfs on /sys/module, say) must not get to decide whether exec applies its profile. */
typedef struct crib_lsm_host {
  bool apparmor; /* securityfs has apparmor/ and /sys/module/apparmor/parameters/enabled is "Y" */
  bool selinux;  /* /sys/fs/selinux/enforce is readable */
} crib_lsm_host;

void crib_lsm_probe(crib_lsm_host *host);

/* process.apparmorProfile and process.selinuxLabel: set for the coming execve (through the
 * procfs handle proc) when the host has that LSM, otherwise ignored with a warning in warn. */
int crib_process_lsm(json_t *process, const crib_lsm_host *host, int proc, char *warn, size_t warn_n,
                     crib_err *err);

/* Umask and no_new_privs. */
int crib_process_finish(json_t *process, crib_err *err);

/* Resolve args[0] like execvp would with the process's PATH; fails when there is no such
 * executable, so `create` reports a missing binary instead of `start`. */
int crib_process_find(json_t *process, char *out, size_t n, crib_err *err);

/* NULL-terminated argv/envp pointing into the json (valid while process lives). */
char **crib_process_strv(json_t *arr);

#endif
