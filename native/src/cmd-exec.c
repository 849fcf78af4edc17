/* `exec [flags] ID [ARGS...]`: --process FILE, or args with --cwd/--env/--tty/--user on top
 * of the container's own process template (user, capabilities, no_new_privs). crib's own
 * --capture-output MAX [--timeout SECONDS] is CRI ExecSync's (exec.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "crib-parse-uint.h"
#include "exec.h"
#include "process.h"
#include "spec.h"
#include "state.h"

static int env_set(json_t *env, const char *kv) {
  size_t klen = strcspn(kv, "=");
  size_t i;
  json_t *v;
  json_array_foreach(env, i, v) {
    const char *s = json_string_value(v);
    if (s && strncmp(s, kv, klen) == 0 && s[klen] == '=') return json_array_set_new(env, i, json_string(kv));
  }
  return json_array_append_new(env, json_string(kv));
}

int crib_cmd_exec(const crib_globals *g, int argc, char **argv, crib_err *err) {
  const char *process_file = NULL, *console = NULL, *pid_file = NULL, *cwd = NULL, *user = NULL;
  const char *apparmor = NULL, *label = NULL, *preserve = NULL, *capture = NULL, *timeout = NULL;
  bool detach = false, tty = false, nnp = false, ignore_paused = false;
  json_t *envs = json_array(), *caps = json_array(), *gids = json_array();
  const crib_opt opts[] = {
      {"process", 'p', CRIB_OPT_STRING, &process_file},
      {"console-socket", 0, CRIB_OPT_STRING, &console},
      {"pid-file", 0, CRIB_OPT_STRING, &pid_file},
      {"detach", 'd', CRIB_OPT_FLAG, &detach},
      {"tty", 't', CRIB_OPT_FLAG, &tty},
      {"cwd", 0, CRIB_OPT_STRING, &cwd},
      {"env", 'e', CRIB_OPT_LIST, envs},
      {"user", 'u', CRIB_OPT_STRING, &user},
      {"additional-gids", 'g', CRIB_OPT_LIST, gids},
      {"cap", 'c', CRIB_OPT_LIST, caps},
      {"no-new-privs", 0, CRIB_OPT_FLAG, &nnp},
      {"apparmor", 0, CRIB_OPT_STRING, &apparmor},
      {"process-label", 0, CRIB_OPT_STRING, &label},
      {"preserve-fds", 0, CRIB_OPT_STRING, &preserve},
      {"ignore-paused", 0, CRIB_OPT_FLAG, &ignore_paused},
      {"capture-output", 0, CRIB_OPT_STRING, &capture},
      {"timeout", 0, CRIB_OPT_STRING, &timeout},
  };
  json_t *process = NULL, *spec = NULL;
  int rc = -1, i = 0;
  crib_state st = {0};
  if (crib_parse_flags(argc, argv, &i, opts, sizeof opts / sizeof opts[0], err) < 0) goto out;
  if (i >= argc) {
    crib_fail(err, 0, "missing container id");
    goto out;
  }
  const char *id = argv[i++];
  /* ExecSync's result is one JSON object on our stdout: a pty, a detached process or fds of the
   * caller's have no place in it. */
  unsigned long capture_max = 0, timeout_sec = 0;
  if (capture && (crib_parse_uint(capture, 1, 1UL << 30, &capture_max) < 0 || detach || console || preserve)) {
    crib_fail(err, 0, "--capture-output `%s`: expected bytes per stream (1 to 1 GiB), without --detach, "
                      "--console-socket or --preserve-fds", capture);
    goto out;
  }
  if (timeout && (!capture || crib_parse_uint(timeout, 0, 1UL << 31, &timeout_sec) < 0)) {
    crib_fail(err, 0, "--timeout `%s`: expected seconds (0: none), with --capture-output", timeout);
    goto out;
  }
  if (process_file) {
    json_error_t jerr;
    process = crib_json_load_path(process_file, &jerr);
    if (!process) {
      crib_fail(err, 0, "--process `%s`: %s", process_file, jerr.text);
      goto out;
    }
  } else {
    if (i >= argc) {
      crib_fail(err, 0, "exec: no command given (args or --process)");
      goto out;
    }
    /* Start from the container's process: same user, caps, env, no_new_privs. */
    if (crib_state_read(g->root, id, &st, err) < 0) goto out;
    spec = crib_spec_load(st.bundle, err);
    if (!spec) goto out;
    process = json_deep_copy(json_object_get(spec, "process"));
    json_t *args = json_array();
    for (; i < argc; i++) json_array_append_new(args, json_string(argv[i]));
    json_object_set_new(process, "args", args);
    json_object_set_new(process, "terminal", json_boolean(tty));
    json_object_del(process, "consoleSize");
    json_object_del(process, "oomScoreAdj");
    json_object_del(process, "rlimits");
    if (cwd) json_object_set_new(process, "cwd", json_string(cwd));
  }
  if (process_file && i < argc) {
    crib_fail(err, 0, "exec: both --process and args given");
    goto out;
  }
  if (!json_is_array(json_object_get(process, "env"))) json_object_set_new(process, "env", json_array());
  size_t k;
  json_t *v;
  json_array_foreach(envs, k, v) env_set(json_object_get(process, "env"), json_string_value(v));
  if (user) {
    char *end;
    unsigned long uid = strtoul(user, &end, 10), gid = 0;
    if (end == user || (*end && *end != ':')) {
      crib_fail(err, 0, "--user `%s`: expected UID[:GID]", user);
      goto out;
    }
    if (*end == ':') gid = strtoul(end + 1, NULL, 10);
    json_t *u = json_object_get(process, "user");
    if (!json_is_object(u)) json_object_set_new(process, "user", u = json_object());
    json_object_set_new(u, "uid", json_integer((json_int_t)uid));
    json_object_set_new(u, "gid", json_integer((json_int_t)gid));
  }
  if (json_array_size(gids)) {
    json_t *u = json_object_get(process, "user");
    if (!json_is_object(u)) json_object_set_new(process, "user", u = json_object());
    json_t *arr = json_array();
    json_array_foreach(gids, k, v) json_array_append_new(arr, json_integer(atoll(json_string_value(v))));
    json_object_set_new(u, "additionalGids", arr);
  }
  if (json_array_size(caps)) {
    json_t *c = json_object_get(process, "capabilities");
    if (!json_is_object(c)) json_object_set_new(process, "capabilities", c = json_object());
    static const char *sets[] = {"bounding", "effective", "permitted", "inheritable", "ambient"};
    for (size_t s = 0; s < 5; s++) {
      json_t *set = json_object_get(c, sets[s]);
      if (!json_is_array(set)) json_object_set_new(c, sets[s], set = json_array());
      json_array_foreach(caps, k, v) json_array_append(set, v);
    }
  }
  if (nnp) json_object_set_new(process, "noNewPrivileges", json_true());
  if (apparmor) json_object_set_new(process, "apparmorProfile", json_string(apparmor));
  if (label) json_object_set_new(process, "selinuxLabel", json_string(label));
  if (crib_spec_check_process(process, process_file ? "--process" : "process", err) < 0) goto out;
  if (capture && crib_json_bool(process, "terminal", false)) {
    crib_fail(err, 0, "--capture-output: the process asks for a terminal");
    goto out;
  }
  crib_exec_opts eo = {.root = g->root, .id = id, .process = process, .console_socket = console,
                       .pid_file = pid_file, .detach = detach,
                       .preserve_fds = preserve ? atoi(preserve) : 0,
                       .capture = capture != NULL, .capture_max = capture_max, .timeout_sec = timeout_sec};
  rc = crib_container_exec(&eo, err);
out:
  json_decref(envs);
  json_decref(caps);
  json_decref(gids);
  json_decref(process);
  json_decref(spec);
  crib_state_free(&st);
  return rc;
}
