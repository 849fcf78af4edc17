/* Test driver for the cgroup library: each subcommand calls one library function, so the vitest
 * suites can drive it against real cgroups without the rest of crib-runtime.
 *
 *   cgroup-driver detect
 *   cgroup-driver resolve <cgroupsPath> [id]     prints the resolved path
 *   cgroup-driver create  <cgroupsPath>
 *   cgroup-driver apply   <cgroupsPath> <resources JSON>
 *   cgroup-driver enter   <cgroupsPath> <pid>
 *   cgroup-driver run     <cgroupsPath> <program> [args...]   enter itself, then exec program
 *   cgroup-driver kill    <cgroupsPath> <signal number>
 *   cgroup-driver destroy <cgroupsPath>
 *   cgroup-driver oom     <cgroupsPath>          prints the oom_kill count
 *   cgroup-driver pids    <cgroupsPath>          prints one pid per line
 *
 * Paths are resolved with id "test". Errors: "cgroup-driver: <message>" on stderr, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup/cgroup.h"

static int fail(const crib_err *err) {
  crib_err_print("cgroup-driver", err);
  return 1;
}

int main(int argc, char **argv) {
  crib_err err = {0};
  crib_cgroup cg;
  if (argc < 2) {
    fprintf(stderr, "usage: cgroup-driver <command> [args]\n");
    return 2;
  }
  const char *cmd = argv[1];
  if (crib_cg_detect(&cg, &err) < 0) return fail(&err);
  if (strcmp(cmd, "detect") == 0) {
    printf("%s %s\n", cg.mode == CRIB_CG_V2 ? "v2" : "v1", cg.root);
    return 0;
  }
  if (argc < 3) {
    fprintf(stderr, "cgroup-driver %s: missing cgroupsPath\n", cmd);
    return 2;
  }
  const char *id = (strcmp(cmd, "resolve") == 0 && argc > 3) ? argv[3] : "test";
  if (crib_cg_resolve_path(&cg, argv[2], id, &err) < 0) return fail(&err);

  if (strcmp(cmd, "resolve") == 0) {
    printf("%s\n", cg.path);
    return 0;
  }
  if (strcmp(cmd, "create") == 0) return crib_cg_create(&cg, &err) < 0 ? fail(&err) : 0;
  if (strcmp(cmd, "destroy") == 0) return crib_cg_destroy(&cg, &err) < 0 ? fail(&err) : 0;
  if (strcmp(cmd, "apply") == 0 && argc == 4) {
    json_error_t jerr;
    json_t *res = json_loads(argv[3], JSON_DECODE_ANY, &jerr);
    if (res == NULL) {
      fprintf(stderr, "cgroup-driver: resources JSON: %s\n", jerr.text);
      return 2;
    }
    int rc = crib_cg_apply(&cg, res, &err);
    json_decref(res);
    return rc < 0 ? fail(&err) : 0;
  }
  if (strcmp(cmd, "enter") == 0 && argc == 4)
    return crib_cg_enter(&cg, (pid_t)atoi(argv[3]), &err) < 0 ? fail(&err) : 0;
  if (strcmp(cmd, "run") == 0 && argc >= 4) {
    if (crib_cg_enter(&cg, getpid(), &err) < 0) return fail(&err);
    execv(argv[3], argv + 3);
    perror("cgroup-driver: execv");
    return 127;
  }
  if (strcmp(cmd, "kill") == 0 && argc == 4)
    return crib_cg_kill_all(&cg, atoi(argv[3]), &err) < 0 ? fail(&err) : 0;
  if (strcmp(cmd, "oom") == 0) {
    long count;
    if (crib_cg_oom_kills(&cg, &count, &err) < 0) return fail(&err);
    printf("%ld\n", count);
    return 0;
  }
  if (strcmp(cmd, "pids") == 0) {
    pid_t *pids;
    size_t n;
    if (crib_cg_pids(&cg, &pids, &n, &err) < 0) return fail(&err);
    for (size_t i = 0; i < n; i++) printf("%d\n", (int)pids[i]);
    free(pids);
    return 0;
  }
  fprintf(stderr, "cgroup-driver: unknown command or wrong arguments: %s\n", cmd);
  return 2;
}
