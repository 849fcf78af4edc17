/* The sync channel: exactly one JSON line to the caller, then the fd is closed.
 *   {"pid": <container pid>, "monitorPid": <monitor pid>}
 *   {"pid": -1, "message": "<why, usually the runtime's stderr>"} */
#include "monitor.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void sync_report_pid(int fd, pid_t pid, pid_t monitor_pid) {
  if (fd < 0) return;
  char line[96];
  int n = snprintf(line, sizeof line, "{\"pid\": %d, \"monitorPid\": %d}\n", (int)pid,
                   (int)monitor_pid);
  crib_write_all(fd, line, (size_t)n);
  close(fd);
}

void sync_report_error(int fd, const char *message) {
  if (fd < 0) return;
  struct json_buf b = {0};
  json_buf_append(&b, "{\"pid\": -1, \"message\": ", 23);
  json_buf_string(&b, message, strlen(message));
  json_buf_append(&b, "}\n", 2);
  if (b.data) crib_write_all(fd, b.data, b.len);
  json_buf_free(&b);
  close(fd);
}
