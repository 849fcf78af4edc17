/* Shared declarations of crib-monitor, the per-container monitor (see main.c for its CLI). */
#ifndef CRIB_MONITOR_H
#define CRIB_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "crib-error.h"
#include "crib-io.h"
#include "crib-json-buf.h"
#include "crib-proc-tree.h"
#include "crib-signal-reset.h"

#define MONITOR_PROG "crib-monitor"

struct pollfd;

/* Stream ids: used in log records and as the first byte of attach frames (docker's numbering). */
enum { STREAM_STDIN = 0, STREAM_STDOUT = 1, STREAM_STDERR = 2 };

struct monitor_opts {
  const char *runtime;
  const char *runtime_root;
  const char *id;
  const char *bundle;
  const char *log_path;
  const char *exit_file;
  const char *attach_socket;
  const char *ctl_socket;
  const char *container_pid_file;
  bool stdin_open;
  bool stdin_once;
  bool terminal;
  size_t log_max_line;
  int sync_fd;
  /* Streaming exec mode: run `<runtime> exec --detach --process FILE` instead of create; the log
   * file is then optional, and with wait_attach the process starts only once a client is
   * attached, so none of its output is lost. */
  const char *exec_process;
  bool wait_attach;
  /* Container mode restoring a checkpoint: run `<runtime> restore --image-path DIR --detach
   * --bundle B` instead of create; the restored process is running (not parked) once the sync
   * line is written, and is adopted exactly like a created init (main.c). */
  const char *restore_image;
};

struct exec_sync_opts {
  const char *runtime;
  const char *runtime_root;
  const char *id;
  const char *process;
  /* Where the runtime writes the exec'd process's pid (read to kill it at the timeout). */
  const char *pid_file;
  unsigned long timeout_sec; /* 0: no timeout, as in CRI */
  size_t max_output;
};

/* fd-util.c */
int set_nonblock(int fd, crib_err *err);
int set_cloexec(int fd, crib_err *err);
int devnull_stdio(crib_err *err);
void close_fds_from(int first, int keep);

/* time-format.c: RFC3339Nano in local time with numeric offset ("Z" when UTC). */
#define TIMESTAMP_MAX 64
void format_timestamp(char out[TIMESTAMP_MAX], const struct timespec *ts);
void format_now(char out[TIMESTAMP_MAX]);

/* unix-socket.c: paths longer than sun_path go through /proc/self/fd/<dirfd>/<name>. */
int unix_listen(const char *path, int type, mode_t mode, crib_err *err);
int recv_fd(int sock, crib_err *err);

/* log-writer.c: the CRI log file format. Every call accepts NULL (no log file: exec mode). */
struct log_writer;
struct log_writer *log_writer_open(const char *path, size_t max_line, crib_err *err);
void log_writer_write(struct log_writer *lw, int stream, const char *data, size_t len);
void log_writer_flush(struct log_writer *lw, int stream); /* stream closed: partial line as P */
int log_writer_reopen(struct log_writer *lw, crib_err *err);
/* True while writes fail and output is being dropped (see log-writer.c). */
bool log_writer_dropping(const struct log_writer *lw);

/* exit-status.c */
struct exit_status {
  int code;   /* 128+signal for a signalled process */
  int signal; /* 0: none */
  char exited_at[TIMESTAMP_MAX];
  bool oom_killed;
};
void exit_status_from_wait(struct exit_status *es, int wait_status, const struct timespec *when,
                           bool oom_killed);
int exit_status_json(const struct exit_status *es, struct json_buf *b); /* the object */
int exit_status_write_file(const char *path, const struct exit_status *es, crib_err *err);
/* Whether a failed write may work later (a full disk), so the monitor should try again. */
bool exit_status_write_may_heal(int errnum);

/* oom.c: the oom_kill counter of the memory cgroup a process is in. */
struct oom_probe {
  char counter_path[4096]; /* empty when no memory cgroup was found */
  long long before;
};
void oom_probe_init(struct oom_probe *p, pid_t pid);
bool oom_probe_killed(const struct oom_probe *p);

/* spawn.c: the runtime's argv up to its command (`<runtime> [--root DIR]`): returns how many
 * entries (at most 3) were written. */
int runtime_argv(char **argv, const char *runtime, const char *runtime_root);

/* spawn.c: run the runtime with the given stdio, signals reset. */
pid_t spawn_runtime(char *const argv[], int in_fd, int out_fd, int err_fd, crib_err *err);
int read_pid_file(const char *path, pid_t *pid, crib_err *err);

/* send-queue.c: bytes a non-blocking client socket could not take yet, sent in order later. */
struct send_queue {
  char *buf; /* allocated only while there is a backlog */
  size_t len, cap;
};
/* Appends len bytes; false when the backlog would pass max bytes or memory runs out. */
bool send_queue_push(struct send_queue *q, const void *data, size_t len, size_t max);
/* Sends what it can to fd; false when the peer is gone (an error other than EAGAIN). */
bool send_queue_flush(struct send_queue *q, int fd);
void send_queue_free(struct send_queue *q);

/* attach.c: the attach socket and its clients. */
struct attach_server;
struct attach_server *attach_server_open(const char *path, crib_err *err);
/* Adds the listener and clients to pfds (from index *n); returns nothing, bumps *n. */
void attach_poll_fds(struct attach_server *as, struct pollfd *pfds, size_t *n, bool want_input);
/* Handles events on the fds added by attach_poll_fds; stdin bytes read go to on_input, a client
 * stopping its input (EOF) calls on_input_end. Returns false when input must pause. */
typedef void (*attach_input_fn)(void *ctx, const char *data, size_t len);
typedef void (*attach_input_end_fn)(void *ctx);
void attach_handle(struct attach_server *as, struct pollfd *pfds, size_t count, attach_input_fn in,
                   attach_input_end_fn in_end, void *ctx);
void attach_broadcast(struct attach_server *as, int stream, const char *data, size_t len);
void attach_close(struct attach_server *as, const char *path);
bool attach_has_clients(const struct attach_server *as);
/* Block until the first client has connected. */
void attach_wait_client(struct attach_server *as);
#define ATTACH_MAX_POLL 33 /* listener + clients */

/* ctl-command.c: one control command, a flat JSON object. */
#define CTL_MAX_FIELDS 8
enum ctl_kind { CTL_STRING, CTL_INT, CTL_BOOL, CTL_NULL };
struct ctl_field {
  char key[32];
  enum ctl_kind kind;
  char str[128];
  long long num;
  bool b;
};
struct ctl_command {
  const char *name; /* the "cmd" field */
  size_t n;
  struct ctl_field fields[CTL_MAX_FIELDS];
};
int ctl_parse_command(const char *line, size_t len, struct ctl_command *cmd, char *why,
                      size_t why_len);
const struct ctl_field *ctl_command_field(const struct ctl_command *cmd, const char *key);
bool ctl_command_uint(const struct ctl_command *cmd, const char *key, long long max,
                      unsigned *out);

/* ctl.c: the control socket and its clients. */
#define CTL_MAX_CLIENTS 16
#define CTL_MAX_POLL (1 + CTL_MAX_CLIENTS)
struct ctl_server;
struct ctl_server *ctl_open(const char *path, crib_err *err);
void ctl_poll_fds(const struct ctl_server *cs, struct pollfd *pfds, size_t *n);
/* Acts on one command and writes its reply object to `reply` (nothing: {"ok": true}). */
typedef void (*ctl_command_fn)(void *ctx, const struct ctl_command *cmd, struct json_buf *reply);
void ctl_handle(struct ctl_server *cs, const struct pollfd *pfds, size_t count, ctl_command_fn fn,
                void *ctx);
void ctl_reply_error(struct json_buf *reply, const char *message);
/* Queues a line (with its newline) for every client. */
void ctl_broadcast(struct ctl_server *cs, const char *line, size_t len);
void ctl_close(struct ctl_server *cs, const char *path);

/* sync.c: the one JSON line reported to the caller. */
/* 0 once the line is written (or there is no sync fd); -1 with errno when the caller is gone. */
int sync_report_pid(int fd, pid_t pid, pid_t monitor_pid);
void sync_report_error(int fd, const char *message);

/* container.c / exec-sync.c: the two modes. */
int run_container(const struct monitor_opts *o);
int run_exec_sync(const struct exec_sync_opts *o);

#endif
