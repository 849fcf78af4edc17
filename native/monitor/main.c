/* crib-monitor: one per container, what conmon is to CRI-O. It outlives the daemon that started
 * it: it holds the container's stdio, writes the CRI log file, serves attach clients and a control
 * socket, and keeps the exit status for a daemon that may be down when the container dies.
 *
 * Container mode:
 *   crib-monitor --runtime PATH [--runtime-root DIR] --id ID --bundle DIR --log-path FILE
 *                --exit-file FILE --attach-socket PATH --ctl-socket PATH --sync-fd N
 *                [--container-pid-file FILE] [--stdin] [--stdin-once] [--terminal]
 *                [--log-max-line BYTES]
 *   All paths absolute. The command returns at once (exit 0 once the monitor is detached; 1 and a
 *   message on stderr when the arguments or the log/attach/control paths are unusable); the
 *   attach and control sockets exist when it has returned. The detached monitor runs
 *   `<runtime> [--root DIR] create --bundle DIR --pid-file FILE [--console-socket S] ID` and
 *   writes ONE line to fd N, then closes it:
 *     {"pid": <container pid>, "monitorPid": <monitor pid>}     created; call `<runtime> start`
 *     {"pid": -1, "message": "<runtime's stderr or the error>"}  failed; the monitor exited
 *   With --restore DIR (a checkpoint dir that `<runtime> checkpoint` wrote), the monitor runs
 *   `<runtime> [--root R] restore --image-path DIR --work-path DIR --detach --bundle B --pid-file
 *   FILE ID` instead of create: the runtime (criu) restores the process tree with this monitor's
 *   stdio pipes in place of the checkpointed ones, and the restored init, left to its nearest
 *   subreaper, becomes this monitor's child like a created init. The sync line is the same; the
 *   process is already running (there is no `<runtime> start` for it). --terminal is refused.
 *   On pid -1 the caller should still run `<runtime> delete --force ID`: create may have
 *   succeeded before a later step (reading the pid file) failed. The monitor is a subreaper and
 *   in its own session; the caller should move it out of its own cgroup if that is killed as a
 *   whole on restart. The container pid file defaults to <bundle>/container.pid.
 *   Log file: see log-writer.c (CRI format, O_NOFOLLOW, mode 0640; --log-max-line 16384). A log
 *   write that fails drops output (counted; retried at most once a second) and later says so in
 *   the log; it never stalls the container nor spins.
 *   Attach socket: see attach.c (stream socket, 8-byte frame header, raw stdin from clients).
 *
 * Control socket (protocol 2; ctl.c, ctl-command.c): a unix stream socket, mode 0600, up to 16
 *   clients at once. One JSON object per line each way. A client sends commands; each gets
 *   exactly one reply line, in order:
 *     {"cmd": "status"}    -> {"ok": true, "running": B, "pid": N, "exit": EXIT|null,
 *                              "exitFilePersisted": B}
 *     {"cmd": "resize", "rows": R, "cols": C}   -> {"ok": true}   (0..65535; a terminal only)
 *     {"cmd": "reopen"}    -> {"ok": true} once the log file is open again at its path (after
 *                             kubelet renamed it), or {"ok": false, "error": "..."}
 *     {"cmd": "ack-exit"}  -> {"ok": true}: the daemon recorded the exit itself; the monitor
 *                             need not wait for the exit file to be written
 *     anything else        -> {"ok": false, "error": "unknown command" | "malformed command: ..."}
 *   Events are pushed to every connected client as they happen, never inside another line:
 *     {"event": "exit", "exit": EXIT}
 *   EXIT is {"exitCode": N, "signal": S|null, "exitedAt": "<RFC3339Nano>", "oomKilled": B}. A line
 *   over 4096 bytes closes its client; so does a client that lets 64 KiB of replies pile up.
 *   The daemon keeps one connection to every monitor: the connection closing without an exit
 *   event is how it learns at once that the monitor died.
 *
 * After the container exits: its output is drained into the log and attach clients, the exit
 *   event is pushed, attach clients are ended (attach.c), and the exit file is written:
 *   see exit-status.c (EXIT as above, atomic). A write that fails in a way that may heal (a full
 *   disk) is retried after 1 s, doubling up to 10 s, while `status` keeps answering; the monitor
 *   exits once the file is written or the daemon sent ack-exit (or, when the file's directory is
 *   gone, at once: nobody is left to read it). The control socket is removed just before it
 *   exits, after the exit file appeared.
 *
 * Streaming exec mode (kubectl exec / crictl exec -i -t): the same monitor for one exec'd process
 *   crib-monitor exec --runtime PATH [--runtime-root DIR] --id ID --process FILE
 *                --exit-file FILE --attach-socket PATH --ctl-socket PATH --sync-fd N
 *                [--container-pid-file FILE] [--log-path FILE] [--wait-attach] [--stdin]
 *                [--stdin-once] [--terminal]
 *   runs `<runtime> [--root DIR] exec --detach --process FILE --pid-file P [--console-socket S]
 *   ID`; sync line, attach socket, control socket and exit file as above; no log file unless
 *   --log-path. With --wait-attach the runtime runs only once a first client is connected to the
 *   attach socket (which exists when the command has returned), so no output is lost. The pid
 *   file defaults to <exit-file>.pid.
 *
 * exec-sync mode (see exec-sync.c):
 *   crib-monitor exec-sync --runtime PATH [--runtime-root DIR] --id ID --process FILE
 *                [--container-pid-file FILE] [--timeout SECONDS] [--max-output BYTES]
 *   prints {"exitCode", "stdout" (base64), "stderr" (base64), "timedOut", "truncated"} on
 *   stdout, then exits. A caller must read stdout to its end (EOF), not stop when the process
 *   exits: the exit can be seen before the output has been read.
 *   --timeout 0 (default) waits forever; --max-output defaults to 16 MiB per stream. The runtime
 *   writes the exec'd process's pid to --container-pid-file, as in exec mode (its directory must
 *   exist; a file already there is removed first); the monitor removes it when it is done.
 *   Without it (a daemon from before the option, until an upgrade restarts it) the file is made
 *   in a private directory of /tmp.
 *
 * Protocol 1 (crib before the control socket) had a control fifo (--ctl-path; "resize R C\n",
 * "reopen\n") and no socket; a daemon finds such monitors by the missing ctl socket.
 *
 * Exit status 2 means bad arguments. */
#include "monitor.h"

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  OPT_RUNTIME = 1000,
  OPT_RUNTIME_ROOT,
  OPT_ID,
  OPT_BUNDLE,
  OPT_LOG_PATH,
  OPT_EXIT_FILE,
  OPT_ATTACH,
  OPT_CTL_SOCKET,
  OPT_PID_FILE,
  OPT_STDIN,
  OPT_STDIN_ONCE,
  OPT_TERMINAL,
  OPT_LOG_MAX,
  OPT_SYNC_FD,
  OPT_PROCESS,
  OPT_TIMEOUT,
  OPT_MAX_OUTPUT,
  OPT_WAIT_ATTACH,
  OPT_RESTORE,
};

static const struct option long_opts[] = {
    {"runtime", required_argument, NULL, OPT_RUNTIME},
    {"runtime-root", required_argument, NULL, OPT_RUNTIME_ROOT},
    {"id", required_argument, NULL, OPT_ID},
    {"bundle", required_argument, NULL, OPT_BUNDLE},
    {"log-path", required_argument, NULL, OPT_LOG_PATH},
    {"exit-file", required_argument, NULL, OPT_EXIT_FILE},
    {"attach-socket", required_argument, NULL, OPT_ATTACH},
    {"ctl-socket", required_argument, NULL, OPT_CTL_SOCKET},
    {"container-pid-file", required_argument, NULL, OPT_PID_FILE},
    {"stdin", no_argument, NULL, OPT_STDIN},
    {"stdin-once", no_argument, NULL, OPT_STDIN_ONCE},
    {"terminal", no_argument, NULL, OPT_TERMINAL},
    {"log-max-line", required_argument, NULL, OPT_LOG_MAX},
    {"sync-fd", required_argument, NULL, OPT_SYNC_FD},
    {"process", required_argument, NULL, OPT_PROCESS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"max-output", required_argument, NULL, OPT_MAX_OUTPUT},
    {"wait-attach", no_argument, NULL, OPT_WAIT_ATTACH},
    {"restore", required_argument, NULL, OPT_RESTORE},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, MONITOR_PROG ": ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see the top of native/monitor/main.c for the usage)\n");
  va_end(ap);
  return 2;
}

static bool parse_size(const char *s, unsigned long long min, unsigned long long max,
                       unsigned long long *out) {
  char *end;
  if (*s < '0' || *s > '9') return false;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

/* The daemon validates ids too; the monitor refuses anything that could be read as an option or
 * a path by the runtime. */
static bool valid_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 128 || id[0] == '-' || id[0] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_' || c == '.'))
      return false;
  }
  return true;
}

static int require_abs(const char *name, const char *value) {
  if (value == NULL) return usage_error("--%s is required", name);
  if (value[0] != '/') return usage_error("--%s must be an absolute path, got `%s`", name, value);
  return 0;
}

int main(int argc, char **argv) {
  bool exec_mode = argc > 1 && strcmp(argv[1], "exec-sync") == 0;
  bool stream_exec = argc > 1 && strcmp(argv[1], "exec") == 0;
  struct monitor_opts o = {.log_max_line = 16384, .sync_fd = -1};
  struct exec_sync_opts e = {.max_output = 16 * 1024 * 1024};
  const char *runtime = NULL, *root = NULL, *id = NULL;
  unsigned long long v;
  int c;
  optind = exec_mode || stream_exec ? 2 : 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
    switch (c) {
    case OPT_RUNTIME: runtime = optarg; break;
    case OPT_RUNTIME_ROOT: root = optarg; break;
    case OPT_ID: id = optarg; break;
    case OPT_BUNDLE: o.bundle = optarg; break;
    case OPT_LOG_PATH: o.log_path = optarg; break;
    case OPT_EXIT_FILE: o.exit_file = optarg; break;
    case OPT_ATTACH: o.attach_socket = optarg; break;
    case OPT_CTL_SOCKET: o.ctl_socket = optarg; break;
    case OPT_PID_FILE: o.container_pid_file = optarg; break;
    case OPT_STDIN: o.stdin_open = true; break;
    case OPT_STDIN_ONCE: o.stdin_once = true; break;
    case OPT_TERMINAL: o.terminal = true; break;
    case OPT_PROCESS: e.process = optarg; break;
    case OPT_WAIT_ATTACH: o.wait_attach = true; break;
    case OPT_RESTORE: o.restore_image = optarg; break;
    case OPT_LOG_MAX:
      if (!parse_size(optarg, 64, 16 * 1024 * 1024, &v))
        return usage_error("--log-max-line must be 64..16777216 bytes, got `%s`", optarg);
      o.log_max_line = (size_t)v;
      break;
    case OPT_SYNC_FD:
      if (!parse_size(optarg, 0, INT_MAX, &v))
        return usage_error("--sync-fd must be a file descriptor number, got `%s`", optarg);
      o.sync_fd = (int)v;
      break;
    case OPT_TIMEOUT:
      if (!parse_size(optarg, 0, 365ULL * 24 * 3600, &v))
        return usage_error("--timeout must be a number of seconds, got `%s`", optarg);
      e.timeout_sec = (unsigned long)v;
      break;
    case OPT_MAX_OUTPUT:
      if (!parse_size(optarg, 0, 1ULL << 30, &v))
        return usage_error("--max-output must be 0..1073741824 bytes, got `%s`", optarg);
      e.max_output = (size_t)v;
      break;
    default:
      return usage_error("unknown or incomplete option `%s`", argv[optind - 1]);
    }
  }
  if (optind < argc) return usage_error("unexpected argument `%s`", argv[optind]);
  if (require_abs("runtime", runtime)) return 2;
  if (id == NULL || !valid_id(id))
    return usage_error("--id must be 1-128 of [A-Za-z0-9_.-] not starting with - or ., got `%s`",
                       id ? id : "");
  if (root && require_abs("runtime-root", root)) return 2;

  if (exec_mode) {
    if (require_abs("process", e.process)) return 2;
    if (o.container_pid_file && require_abs("container-pid-file", o.container_pid_file)) return 2;
    e.pid_file = o.container_pid_file;
    e.runtime = runtime;
    e.runtime_root = root;
    e.id = id;
    return run_exec_sync(&e);
  }

  if (stream_exec) {
    if (require_abs("process", e.process)) return 2;
    if (o.bundle) return usage_error("--bundle is not used by exec");
    if (o.log_path && require_abs("log-path", o.log_path)) return 2;
    o.exec_process = e.process;
  } else {
    if (e.process) return usage_error("--process is only for exec and exec-sync");
    if (o.wait_attach) return usage_error("--wait-attach is only for exec");
  }
  if (o.restore_image) {
    if (exec_mode || stream_exec) return usage_error("--restore is only for container mode");
    if (require_abs("restore", o.restore_image)) return 2;
    if (o.terminal) return usage_error("--restore cannot be used with --terminal");
  }
  const char *required[][2] = {{"bundle", stream_exec ? "/" : o.bundle},
                               {"log-path", stream_exec ? "/" : o.log_path},
                               {"exit-file", o.exit_file},
                               {"attach-socket", o.attach_socket},
                               {"ctl-socket", o.ctl_socket}};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
    if (require_abs(required[i][0], required[i][1])) return 2;
  if (o.container_pid_file && require_abs("container-pid-file", o.container_pid_file)) return 2;
  if (o.sync_fd < 0) return usage_error("--sync-fd is required");
  if (o.sync_fd < 3) return usage_error("--sync-fd must be 3 or more, got %d", o.sync_fd);
  if (o.stdin_once && !o.stdin_open) return usage_error("--stdin-once needs --stdin");
  static char pid_file[PATH_MAX];
  if (o.container_pid_file == NULL) {
    int n = stream_exec ? snprintf(pid_file, sizeof pid_file, "%s.pid", o.exit_file)
                        : snprintf(pid_file, sizeof pid_file, "%s/container.pid", o.bundle);
    if (n < 0 || n >= (int)sizeof pid_file)
      return usage_error("--bundle or --exit-file path too long: `%s`", pid_file);
    o.container_pid_file = pid_file;
  }
  o.runtime = runtime;
  o.runtime_root = root;
  o.id = id;
  return run_container(&o);
}
