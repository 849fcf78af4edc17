/* The sync channel: exactly one JSON line to the caller, then the fd is closed.
 *   {"pid": <container pid>, "monitorPid": <monitor pid>}
 *   {"pid": -1, "message": "<why, usually the runtime's stderr>"}
 * A pid line that cannot be written (EPIPE: the caller closed its end or died) is reported to the
 * monitor, which then undoes what it made: nobody else will ever learn that pid. */
#include "monitor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sync_report_pid(int fd, pid_t pid, pid_t monitor_pid) {
  if (fd < 0) return 0;
  char line[96];
  int n = snprintf(line, sizeof line, "{\"pid\": %d, \"monitorPid\": %d}\n", (int)pid,
                   (int)monitor_pid);
  int rc = crib_write_all(fd, line, (size_t)n);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
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
