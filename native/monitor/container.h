/* The state of a monitored container, shared by container.c (the event loop) and
 * runtime-create.c (running `<runtime> create`). */
#ifndef CRIB_MONITOR_CONTAINER_H
#define CRIB_MONITOR_CONTAINER_H

#include "monitor.h"

#define STDIN_BUF 16384

struct container {
  const struct monitor_opts *o;
  struct log_writer *log;
  struct attach_server *attach;
  struct ctl_server *ctl;
  int sigfd;
  int out_fd, err_fd; /* read ends; -1 once closed */
  int stdin_fd;       /* write end (or the pty master); -1 when there is none */
  int pty_fd;         /* the pty master in terminal mode, kept for resize */
  char in_buf[STDIN_BUF];
  size_t in_len;
  bool stdin_close_pending;
  pid_t pid;
  bool exited;
  int status;
  struct timespec exited_ts; /* CLOCK_REALTIME when the process was reaped */
  /* After the exit: the status as reported, whether the exit file holds it, and whether the
   * daemon said it recorded the exit itself (ack-exit). The monitor stays until one is true. */
  bool have_exit;
  struct exit_status exit;
  bool exit_persisted;
  bool exit_acked;
  /* While the log drops output and nobody is attached, output is read in batches (see
   * container.c); CLOCK_MONOTONIC ms until which the output fds are not polled. */
  long long output_paused_until;
};

/* Before the sync line was sent: tidy up, report the failure on the sync fd; returns 1. */
int fail_early(struct container *c, const char *message);

/* Runs `<runtime> create`, fills pid and the stdio fds; on failure reports it and returns 1. */
int create_container(struct container *c);

/* Undoes a successful create_container whose pid could not be handed to the caller: kills the
 * process with whatever it started and, unless it was an exec, runs `<runtime> delete --force`
 * so no runtime state is left. Best effort: failures go to stderr. */
void abandon_container(struct container *c);

#endif
