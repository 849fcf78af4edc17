/* crib-runtime: an OCI runtime with runc's command-line shape. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>

#include "cli.h"
#include "crib-sealed-exe.h"
#include "state.h"

/* `enters` marks the verbs whose processes enter a container's namespaces: create and run fork
 * the container's init, exec forks a process into a running container. They run from a sealed
 * memfd copy of this binary and non-dumpable (crib-sealed-exe.h), at the cost of one more
 * execve. The others stay as fast as before, because no container process can reach them: they
 * live in the host's PID namespace only. `start` in particular only talks through the exec fifos
 * (exec-fifo.h); the init it releases was forked by `create` after that had re-executed, so the
 * init's /proc/<pid>/exe (which the container sees) is already the sealed copy, and it stays
 * non-dumpable until its execve of the container's program. */
static const struct {
  const char *name;
  int (*fn)(const crib_globals *, int, char **, crib_err *);
  bool enters;
} verbs[] = {
    {"create", crib_cmd_create, true}, {"run", crib_cmd_run, true},
    {"start", crib_cmd_start, false},  {"state", crib_cmd_state, false},
    {"kill", crib_cmd_kill, false},    {"delete", crib_cmd_delete, false},
    {"exec", crib_cmd_exec, true},     {"list", crib_cmd_list, false},
    {"features", crib_cmd_features, false}, {"update", crib_cmd_update, false},
    {"ps", crib_cmd_ps, false},       {"mount-template", crib_cmd_mount_template, false},
    {"pause", crib_cmd_pause, false}, {"resume", crib_cmd_resume, false},
    /* criu does the entering (criu.h); these only drive it. */
    {"checkpoint", crib_cmd_checkpoint, false}, {"restore", crib_cmd_restore, false},
};

static void usage(FILE *f) {
  fputs("usage: crib-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n"
        "commands: create run start state kill delete exec list features update ps pause resume\n"
        "          checkpoint restore mount-template\n",
        f);
}

/* runc's --log: errors also go to a file, as JSON lines when asked (the daemon reads them). */
static void log_error(const crib_globals *g, const crib_err *e) {
  if (!g->log) return;
  FILE *f = fopen(g->log, "ae");
  if (!f) return;
  char now[64];
  crib_now_rfc3339(now, sizeof now);
  if (g->log_format && strcmp(g->log_format, "json") == 0) {
    json_t *o = json_pack("{s:s, s:s, s:s}", "level", "error", "msg", e->msg, "time", now);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) fprintf(f, "%s\n", s);
    free(s);
    json_decref(o);
  } else {
    fprintf(f, "time=\"%s\" level=error msg=\"%s\"\n", now, e->msg);
  }
  fclose(f);
}

int main(int argc, char **argv) {
  /* Run from a sealed copy the daemon holds (/proc/<pid>/fd/<n>), the process would be named
   * after the fd number; ps should show what it is. Cosmetic: a failure changes nothing else. */
  if (prctl(PR_SET_NAME, "crib-runtime", 0, 0, 0) < 0) errno = 0;
  /* jansson seeds its hash function by opening /dev/urandom without O_CLOEXEC; a seed of our
   * own leaves no such fd, however briefly (on failure jansson seeds itself as before). */
  uint32_t seed = 0;
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed && seed != 0)
    json_object_seed(seed);
  crib_globals g = {.root = CRIB_DEFAULT_ROOT, .log_format = "text"};
  bool debug = false, systemd = false, help = false;
  const crib_opt opts[] = {
      {"root", 0, CRIB_OPT_STRING, &g.root},
      {"log", 0, CRIB_OPT_STRING, &g.log},
      {"log-format", 0, CRIB_OPT_STRING, &g.log_format},
      {"debug", 0, CRIB_OPT_FLAG, &debug},
      /* The cgroupsPath form decides systemd or not; accepted for runc compatibility. */
      {"systemd-cgroup", 0, CRIB_OPT_FLAG, &systemd},
      {"criu", 0, CRIB_OPT_STRING, &g.criu},
      {"help", 'h', CRIB_OPT_FLAG, &help},
  };
  crib_err err = {0};
  int i = 1;
  if (crib_parse_flags(argc, argv, &i, opts, sizeof opts / sizeof opts[0], &err) < 0) {
    crib_err_print("crib-runtime", &err);
    usage(stderr);
    return 2;
  }
  if (help) {
    usage(stdout);
    return 0;
  }
  if (i >= argc) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "version") == 0) {
    printf("crib-runtime version 0.1.0\nspec: 1.0.2\n");
    return 0;
  }
  for (size_t k = 0; k < sizeof verbs / sizeof verbs[0]; k++) {
    if (strcmp(verbs[k].name, argv[i]) != 0) continue;
    int rc = verbs[k].enters ? crib_guard_host_binary("crib-runtime", argv, &err) : 0;
    if (rc == 0) rc = verbs[k].fn(&g, argc - i - 1, argv + i + 1, &err);
    if (rc < 0) {
      crib_err_print("crib-runtime", &err);
      log_error(&g, &err);
      return 1;
    }
    return rc;
  }
  fprintf(stderr, "crib-runtime: unknown command `%s`\n", argv[i]);
  usage(stderr);
  return 2;
}
