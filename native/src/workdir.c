#include "workdir.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "spec.h"

int crib_enter_workdir(json_t *process, crib_err *err) {
  const char *cwd = crib_json_str(process, "cwd");
  if (!cwd || !*cwd) cwd = "/";
  if (chdir(cwd) < 0) return crib_fail(err, errno, "process.cwd: chdir `%s`", cwd);
  /* The kernel's getcwd answers "(unreachable)/..." for a directory outside our root, which
   * glibc turns into ENOENT; either way the path does not start at our "/". */
  char now[PATH_MAX];
  if (!getcwd(now, sizeof now)) {
    if (errno == ENOENT)
      return crib_fail(err, 0, "process.cwd `%s` is outside the container's root filesystem "
                       "(a directory of the host reached through /proc?): refused", cwd);
    return crib_fail(err, errno, "process.cwd: getcwd after chdir `%s`", cwd);
  }
  if (now[0] != '/')
    return crib_fail(err, 0, "process.cwd `%s` is outside the container's root filesystem "
                     "(getcwd says `%s`): refused", cwd, now);
  return 0;
}
