/* crib-libc.node: the libc calls the daemon makes that Node does not offer (mount, xattrs, mknod,
 * flock, posix_spawn, fd passing, the new mount API...), as a Node-API addon. Each function is a
 * thin wrapper over one call: it converts the arguments, makes the call, and returns its result,
 * or -errno when it failed, read at once after the call. src/sys/libc.ts turns -errno into the
 * Node-style system error callers branch on, so the messages are written in one place.
 *
 * An addon of our own rather than a generic FFI: the FFI library cost the daemon 3.5 MiB of
 * resident memory for about thirty calls (issue 14's 60 MiB idle goal), and its call signatures
 * were checked only at run time. Only calls that leave the process's namespaces and credentials
 * alone live here: Node is threaded, and namespace work belongs to the native helpers. Three calls
 * are V8's, not libc's: Node-API has no way to ask V8 to shrink its heap (v8-heap.cc) or to reach
 * its worker threads (v8-workers.cc). One is a whole walk of a directory tree (tree-usage.c), which
 * Node's fs cannot make below PATH_MAX.
 *
 * Context-aware (NAPI_MODULE_INIT), with no global state: the image unpacker's worker threads
 * load it too. */
#define NAPI_VERSION 8
#include <node_api.h>

#include "crib-atomic-file.h"
#include "crib-error.h"
#include "crib-sealed-exe.h"
#include "tree-usage.h"
#include "v8-heap.h"
#include "v8-workers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* The new mount API and openat2 have no glibc wrappers on Debian 12: raw syscalls, with the
 * numbers of the shared syscall table (the same on every architecture Node runs on here). */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define CRIB_MOVE_MOUNT_F_EMPTY_PATH 0x4
#define CRIB_MOUNT_ATTR_IDMAP 0x100000

struct crib_open_how {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
struct crib_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

/* ---- argument and result conversion -------------------------------------------------------- */

/* A failed napi_* call: the addon's own bug or an argument of the wrong type. Leaves a pending
 * JavaScript exception (napi's own, or a TypeError naming `what`) and returns false. */
static bool ok(napi_env env, napi_status status, const char *what) {
  if (status == napi_ok) return true;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return false;
  napi_throw_type_error(env, NULL, what);
  return false;
}

static void throw_errorf(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void throw_errorf(napi_env env, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_error(env, NULL, msg);
}

/* The call's arguments; throws (and returns false) unless there are exactly `n`. */
static bool args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *fn) {
  size_t argc = n;
  if (!ok(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), fn)) return false;
  if (argc != n) {
    throw_errorf(env, "%s takes %zu arguments, not %zu", fn, n, argc);
    return false;
  }
  return true;
}

static bool get_i32(napi_env env, napi_value v, int32_t *out, const char *what) {
  return ok(env, napi_get_value_int32(env, v, out), what);
}

/* A call whose `n` arguments are all integers (descriptors, flags): into out[0..n-1]. */
static bool int_args(napi_env env, napi_callback_info info, size_t n, int32_t *out, const char *fn) {
  napi_value a[4];
  if (n > sizeof a / sizeof a[0] || !args(env, info, n, a, fn)) return false;
  for (size_t i = 0; i < n; i++) {
    if (napi_get_value_int32(env, a[i], &out[i]) != napi_ok) {
      char what[96];
      snprintf(what, sizeof what, "%s: argument %zu is not an integer", fn, i + 1);
      return ok(env, napi_number_expected, what);
    }
  }
  return true;
}

static bool get_i64(napi_env env, napi_value v, int64_t *out, const char *what) {
  return ok(env, napi_get_value_int64(env, v, out), what);
}

/* A JavaScript string as a malloc'd C string (free it); with `nullable`, null or undefined give
 * NULL. A string holding a NUL byte is refused: C would read only its first part. */
static bool get_str(napi_env env, napi_value v, char **out, bool nullable, const char *what) {
  *out = NULL;
  napi_valuetype type;
  if (!ok(env, napi_typeof(env, v, &type), what)) return false;
  if (nullable && (type == napi_null || type == napi_undefined)) return true;
  size_t len = 0;
  if (!ok(env, napi_get_value_string_utf8(env, v, NULL, 0, &len), what)) return false;
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return false;
  }
  if (!ok(env, napi_get_value_string_utf8(env, v, s, len + 1, &len), what)) {
    free(s);
    return false;
  }
  if (strlen(s) != len) {
    free(s);
    napi_throw_type_error(env, NULL, what);
    return false;
  }
  *out = s;
  return true;
}

/* A call taking a string (a path, a name: free it) and an integer (flags, a descriptor). */
static bool str_int_args(napi_env env, napi_callback_info info, char **s, int32_t *i, const char *fn) {
  napi_value a[2];
  char what[96];
  *s = NULL;
  if (!args(env, info, 2, a, fn)) return false;
  snprintf(what, sizeof what, "%s: argument 2 is not an integer", fn);
  if (!get_i32(env, a[1], i, what)) return false;
  snprintf(what, sizeof what, "%s: argument 1 is not a string without NUL bytes", fn);
  return get_str(env, a[0], s, false, what);
}

static void free_strv(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

/* A JavaScript array of strings as a NULL-terminated malloc'd array (free_strv it). */
static bool get_strv(napi_env env, napi_value v, char ***out, const char *what) {
  *out = NULL;
  uint32_t n = 0;
  if (!ok(env, napi_get_array_length(env, v, &n), what)) return false;
  char **strv = calloc((size_t)n + 1, sizeof *strv);
  if (!strv) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return false;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    if (!ok(env, napi_get_element(env, v, i, &item), what) || !get_str(env, item, &strv[i], false, what)) {
      free_strv(strv);
      return false;
    }
  }
  *out = strv;
  return true;
}

static napi_value num(napi_env env, double v) {
  napi_value r = NULL;
  ok(env, napi_create_double(env, v, &r), "number");
  return r;
}

/* A call's result: `r` itself, or -errno when it is negative. */
static napi_value result(napi_env env, long r, int errnum) {
  return num(env, r < 0 ? -(double)errnum : (double)r);
}

static napi_value null_value(napi_env env) {
  napi_value r = NULL;
  ok(env, napi_get_null(env, &r), "null");
  return r;
}

static napi_value fd_pair(napi_env env, const int fds[2]) {
  napi_value arr;
  if (!ok(env, napi_create_array_with_length(env, 2, &arr), "array")) return NULL;
  if (!ok(env, napi_set_element(env, arr, 0, num(env, fds[0])), "array")) return NULL;
  if (!ok(env, napi_set_element(env, arr, 1, num(env, fds[1])), "array")) return NULL;
  return arr;
}

/* ---- files, attributes and devices --------------------------------------------------------- */

/* mknod(path, mode, major, minor) */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value a[4];
  int32_t mode, major, minor;
  char *path;
  if (!args(env, info, 4, a, "mknod") || !get_i32(env, a[1], &mode, "mknod: mode") ||
      !get_i32(env, a[2], &major, "mknod: major") || !get_i32(env, a[3], &minor, "mknod: minor") ||
      !get_str(env, a[0], &path, false, "mknod: path"))
    return NULL;
  int r = mknod(path, (mode_t)mode, makedev((unsigned)major, (unsigned)minor));
  int e = errno;
  free(path);
  return result(env, r, e);
}

/* lsetxattr(path, name, value: Buffer) */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value a[3];
  void *data;
  size_t len;
  char *path, *name;
  if (!args(env, info, 3, a, "lsetxattr") || !ok(env, napi_get_buffer_info(env, a[2], &data, &len), "lsetxattr: value") ||
      !get_str(env, a[0], &path, false, "lsetxattr: path"))
    return NULL;
  if (!get_str(env, a[1], &name, false, "lsetxattr: name")) {
    free(path);
    return NULL;
  }
  int r = lsetxattr(path, name, data, len, 0);
  int e = errno;
  free(path);
  free(name);
  return result(env, r, e);
}

/* A variable-sized answer (lgetxattr, llistxattr): asks for the size, then for the bytes, again
 * when the value grew in between (ERANGE). Returns a Buffer, or -errno. */
static napi_value sized_read(napi_env env, const char *path, const char *name) {
  for (;;) {
    ssize_t size = name ? lgetxattr(path, name, NULL, 0) : llistxattr(path, NULL, 0);
    if (size < 0) return result(env, -1, errno);
    char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf) return result(env, -1, ENOMEM);
    ssize_t got = name ? lgetxattr(path, name, buf, (size_t)size) : llistxattr(path, buf, (size_t)size);
    int e = errno;
    if (got >= 0) {
      napi_value out = NULL;
      void *copy;
      ok(env, napi_create_buffer_copy(env, (size_t)got, buf, &copy, &out), "buffer");
      free(buf);
      return out;
    }
    free(buf);
    if (e != ERANGE) return result(env, -1, e);
  }
}

/* lgetxattr(path, name) -> Buffer | -errno */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value a[2];
  char *path, *name;
  if (!args(env, info, 2, a, "lgetxattr") || !get_str(env, a[0], &path, false, "lgetxattr: path")) return NULL;
  if (!get_str(env, a[1], &name, false, "lgetxattr: name")) {
    free(path);
    return NULL;
  }
  napi_value r = sized_read(env, path, name);
  free(path);
  free(name);
  return r;
}

/* llistxattr(path) -> Buffer (NUL-separated names) | -errno */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value a[1];
  char *path;
  if (!args(env, info, 1, a, "llistxattr") || !get_str(env, a[0], &path, false, "llistxattr: path")) return NULL;
  napi_value r = sized_read(env, path, NULL);
  free(path);
  return r;
}

/* lremovexattr(path, name) */
static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value a[2];
  char *path, *name;
  if (!args(env, info, 2, a, "lremovexattr") || !get_str(env, a[0], &path, false, "lremovexattr: path")) return NULL;
  if (!get_str(env, a[1], &name, false, "lremovexattr: name")) {
    free(path);
    return NULL;
  }
  int r = lremovexattr(path, name);
  int e = errno;
  free(path);
  free(name);
  return result(env, r, e);
}

/* ---- mounts -------------------------------------------------------------------------------- */

/* openat2(dirfd, path, flags, resolve) -> fd */
static napi_value js_openat2(napi_env env, napi_callback_info info) {
  napi_value a[4];
  int32_t dirfd;
  int64_t flags, resolve;
  char *path;
  if (!args(env, info, 4, a, "openat2") || !get_i32(env, a[0], &dirfd, "openat2: dirfd") ||
      !get_i64(env, a[2], &flags, "openat2: flags") || !get_i64(env, a[3], &resolve, "openat2: resolve") ||
      !get_str(env, a[1], &path, false, "openat2: path"))
    return NULL;
  struct crib_open_how how = {.flags = (uint64_t)flags, .mode = 0, .resolve = (uint64_t)resolve};
  long r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  int e = errno;
  free(path);
  return result(env, r, e);
}

/* open_tree(dirfd, path, flags) -> fd */
static napi_value js_open_tree(napi_env env, napi_callback_info info) {
  napi_value a[3];
  int32_t dirfd;
  int64_t flags;
  char *path;
  if (!args(env, info, 3, a, "openTree") || !get_i32(env, a[0], &dirfd, "openTree: dirfd") ||
      !get_i64(env, a[2], &flags, "openTree: flags") || !get_str(env, a[1], &path, false, "openTree: path"))
    return NULL;
  long r = syscall(SYS_open_tree, dirfd, path, (unsigned int)flags);
  int e = errno;
  free(path);
  return result(env, r, e);
}

/* mount_setattr(fd, "", AT_EMPTY_PATH, {attr_set, userns_fd when MOUNT_ATTR_IDMAP}) */
static napi_value js_mount_setattr(napi_env env, napi_callback_info info) {
  int32_t v[3]; /* fd, attr_set (MOUNT_ATTR_* fit in 31 bits), userns_fd */
  if (!int_args(env, info, 3, v, "mountSetattr")) return NULL;
  struct crib_mount_attr attr = {.attr_set = (uint32_t)v[1]};
  if (attr.attr_set & CRIB_MOUNT_ATTR_IDMAP) attr.userns_fd = (uint64_t)v[2];
  long r = syscall(SYS_mount_setattr, v[0], "", AT_EMPTY_PATH, &attr, sizeof attr);
  return result(env, r, errno);
}

/* moveMount(target, fd): move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) */
static napi_value js_move_mount(napi_env env, napi_callback_info info) {
  int32_t fd;
  char *target;
  if (!str_int_args(env, info, &target, &fd, "moveMount")) return NULL;
  long r = syscall(SYS_move_mount, fd, "", AT_FDCWD, target, CRIB_MOVE_MOUNT_F_EMPTY_PATH);
  int e = errno;
  free(target);
  return result(env, r, e);
}

/* ---- descriptors ----------------------------------------------------------------------------- */

/* flock(fd, operation) */
static napi_value js_flock(napi_env env, napi_callback_info info) {
  int32_t v[2]; /* fd, operation */
  if (!int_args(env, info, 2, v, "flock")) return NULL;
  int r = flock(v[0], v[1]);
  return result(env, r, errno);
}

/* fcntl(fd, cmd, int arg): F_SETFD, F_ADD_SEALS, F_GET_SEALS (arg ignored) */
static napi_value js_fcntl(napi_env env, napi_callback_info info) {
  int32_t v[3]; /* fd, cmd, arg */
  if (!int_args(env, info, 3, v, "fcntl")) return NULL;
  int r = fcntl(v[0], v[1], v[2]);
  return result(env, r, errno);
}

/* memfd_create(name, flags) -> fd */
static napi_value js_memfd_create(napi_env env, napi_callback_info info) {
  int32_t flags;
  char *name;
  if (!str_int_args(env, info, &name, &flags, "memfdCreate")) return NULL;
  int r = memfd_create(name, (unsigned int)flags);
  int e = errno;
  free(name);
  return result(env, r, e);
}

/* pipe2(flags) -> [read end, write end] | -errno */
static napi_value js_pipe2(napi_env env, napi_callback_info info) {
  int32_t flags;
  if (!int_args(env, info, 1, &flags, "pipe2")) return NULL;
  int fds[2];
  if (pipe2(fds, flags) < 0) return result(env, -1, errno);
  return fd_pair(env, fds);
}

/* socketpair(domain, type, protocol) -> [fd, fd] | -errno */
static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  int32_t v[3]; /* domain, type, protocol */
  if (!int_args(env, info, 3, v, "socketpair")) return NULL;
  int fds[2];
  if (socketpair(v[0], v[1], v[2], fds) < 0) return result(env, -1, errno);
  return fd_pair(env, fds);
}

/* receiveFd(sock): one descriptor sent with SCM_RIGHTS, received without blocking and
 * close-on-exec. -> fd | null (the peer closed without sending one) | -errno; throws when a
 * message came without a descriptor or with its descriptors truncated. */
static napi_value js_receive_fd(napi_env env, napi_callback_info info) {
  int32_t sock;
  if (!int_args(env, info, 1, &sock, "receiveFd")) return NULL;
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  ssize_t n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return result(env, -1, errno);
  if (n == 0) return null_value(env);
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  int fd = -1;
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int)))
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if (msg.msg_flags & MSG_CTRUNC) {
    /* The one that fitted was installed: do not leak it. */
    if (fd >= 0) close(fd);
    throw_errorf(env, "recvmsg fd %d: the passed descriptors were truncated", sock);
    return NULL;
  }
  if (fd < 0) {
    throw_errorf(env, "recvmsg fd %d: a message arrived without a file descriptor", sock);
    return NULL;
  }
  return num(env, fd);
}

/* sealedCopy(path, name) -> fd: crib_sealed_copy of the file at `path` (native/common/sealed-exe.c,
 * the copy the helpers make of themselves), close-on-exec. Throws crib's own message, with the
 * errno's `code` and `errno` when a call failed. */
static napi_value js_sealed_copy(napi_env env, napi_callback_info info) {
  napi_value a[2];
  char *path = NULL, *name = NULL;
  napi_value out = NULL;
  if (!args(env, info, 2, a, "sealedCopy")) return NULL;
  if (get_str(env, a[0], &path, false, "sealedCopy: path") && get_str(env, a[1], &name, false, "sealedCopy: name")) {
    crib_err err = {0};
    int from = open(path, O_RDONLY | O_CLOEXEC);
    int fd = from < 0 ? crib_fail(&err, errno, "open `%s`", path) : crib_sealed_copy(from, path, name, &err);
    if (from >= 0) close(from);
    if (fd >= 0) {
      out = num(env, fd);
    } else {
      napi_value code = NULL, msg = NULL, error = NULL;
      const char *code_name = err.errnum ? strerrorname_np(err.errnum) : NULL;
      if (code_name) ok(env, napi_create_string_utf8(env, code_name, NAPI_AUTO_LENGTH, &code), "sealedCopy");
      if (ok(env, napi_create_string_utf8(env, err.msg, NAPI_AUTO_LENGTH, &msg), "sealedCopy") &&
          ok(env, napi_create_error(env, code, msg, &error), "sealedCopy") &&
          ok(env, napi_set_named_property(env, error, "errno", num(env, err.errnum)), "sealedCopy"))
        napi_throw(env, error);
    }
  }
  free(path);
  free(name);
  return out;
}

/* ---- processes ----------------------------------------------------------------------------- */

/* setpriority(PRIO_PROCESS, gettid(), nice): the calling thread's nice value alone. */
static napi_value js_set_thread_nice(napi_env env, napi_callback_info info) {
  int32_t nice_value;
  if (!int_args(env, info, 1, &nice_value, "setThreadNice")) return NULL;
  int r = setpriority(PRIO_PROCESS, (id_t)gettid(), nice_value);
  return result(env, r, errno);
}

/* execve(path, argv, envp): returns -errno, only when it failed. */
static napi_value js_execve(napi_env env, napi_callback_info info) {
  napi_value a[3];
  char *path = NULL, **argv = NULL, **envp = NULL;
  napi_value out = NULL;
  if (!args(env, info, 3, a, "execve")) return NULL;
  if (get_str(env, a[0], &path, false, "execve: path") && get_strv(env, a[1], &argv, "execve: argv") &&
      get_strv(env, a[2], &envp, "execve: envp")) {
    execve(path, argv, envp);
    out = result(env, -1, errno);
  }
  free(path);
  free_strv(argv);
  free_strv(envp);
  return out;
}

/* posix_spawn with descriptors 0-3 from fds[i] (dup2'd; -1: /dev/null for 0-2, closed for 3), no
 * signal blocked, every signal at its default action, setsid when `new_session`, in directory
 * `cwd` when given. */
static int spawn(pid_t *pid, const char *path, char **argv, char **envp, const int fds[4], bool new_session,
                 const char *cwd) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t mask, defaults;
  int rc = posix_spawn_file_actions_init(&actions);
  if (rc) return rc;
  rc = posix_spawnattr_init(&attr);
  if (rc) {
    posix_spawn_file_actions_destroy(&actions);
    return rc;
  }
  for (int i = 0; i < 4 && !rc; i++) {
    if (fds[i] >= 0) rc = posix_spawn_file_actions_adddup2(&actions, fds[i], i);
    else if (i < 3) rc = posix_spawn_file_actions_addopen(&actions, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
  }
  if (!rc && cwd) rc = posix_spawn_file_actions_addchdir_np(&actions, cwd);
  if (!rc && (sigemptyset(&mask) < 0 || sigfillset(&defaults) < 0)) rc = errno;
  if (!rc) rc = posix_spawnattr_setsigmask(&attr, &mask);
  if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &defaults);
  if (!rc) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (new_session ? POSIX_SPAWN_SETSID : 0));
  if (!rc) rc = posix_spawn(pid, path, &actions, &attr, argv, envp);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  return rc;
}

/* waitpid(pid, WNOHANG) -> the wait status (>= 0) once it ended and is reaped | null while it
 * runs | -errno */
static napi_value js_waitpid_nohang(napi_env env, napi_callback_info info) {
  int32_t pid;
  if (!int_args(env, info, 1, &pid, "waitpidNoHang")) return NULL;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == 0) return null_value(env);
    if (r == pid) return num(env, status);
    if (errno != EINTR) return result(env, -1, errno);
  }
}

/* ---- calls on libuv's pool ------------------------------------------------------------------ */

/* A call that may block (a flush of the disk, a trim of the heap, an unmount that syncs a
 * filesystem), run on a thread of libuv's pool and settled as a promise, so the event loop never
 * waits for it. */
struct pool_call {
  napi_async_work work;
  napi_deferred deferred;
  int (*call)(const struct pool_call *c);
  long arg;
  char *strs[4]; /* the call's strings (paths, options), NULL when unused: malloc'd, freed when it settles */
  int r;
  bool as_boolean; /* resolve with r == 1 rather than r */
  const char *fn;
};

static void free_strs(char *strs[4]) {
  for (int i = 0; i < 4; i++) free(strs[i]);
}

static void pool_call_execute(napi_env env, void *data) {
  (void)env;
  struct pool_call *c = data;
  c->r = c->call(c);
}

/* A number for a pool call's result, NULL when it cannot be made: a completion throws nothing, it
 * rejects the call's promise instead (settle). */
static napi_value settled_number(napi_env env, double v) {
  napi_value r;
  return napi_create_double(env, v, &r) == napi_ok ? r : NULL;
}

/* An array of `items` for a pool call's result, NULL when it or any item (NULL) cannot be made. */
static napi_value array_of(napi_env env, const napi_value *items, uint32_t n) {
  napi_value arr;
  if (napi_create_array_with_length(env, n, &arr) != napi_ok) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    if (items[i] == NULL || napi_set_element(env, arr, i, items[i]) != napi_ok) return NULL;
  }
  return arr;
}

/* Settles a pool call's promise with `v`, or rejects it when the call did not run or its result
 * could not be made (v NULL). */
static void settle(napi_env env, napi_deferred deferred, napi_status status, napi_value v, const char *fn) {
  if (status == napi_ok && v != NULL) {
    napi_resolve_deferred(env, deferred, v);
    return;
  }
  char what[64];
  snprintf(what, sizeof what, "%s did not run", fn);
  napi_value msg = NULL, err = NULL;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &err);
  napi_reject_deferred(env, deferred, err);
}

static void pool_call_complete(napi_env env, napi_status status, void *data) {
  struct pool_call *c = data;
  napi_value v = NULL;
  napi_status made = c->as_boolean ? napi_get_boolean(env, c->r == 1, &v) : napi_create_int32(env, c->r, &v);
  settle(env, c->deferred, status, made == napi_ok ? v : NULL, c->fn);
  napi_delete_async_work(env, c->work);
  free_strs(c->strs);
  free(c);
}

/*
 * A promise settled by `complete` after `execute` ran for `data` on libuv's pool, its deferred and
 * work stored through the pointers; NULL with an exception pending when it cannot be queued (the
 * caller still owns data then).
 */
static napi_value queue_work(napi_env env, const char *fn, napi_async_execute_callback execute,
                             napi_async_complete_callback complete, void *data, napi_deferred *deferred,
                             napi_async_work *work) {
  napi_value promise, name;
  if (!ok(env, napi_create_promise(env, deferred, &promise), fn) ||
      !ok(env, napi_create_string_utf8(env, fn, NAPI_AUTO_LENGTH, &name), fn) ||
      !ok(env, napi_create_async_work(env, NULL, name, execute, complete, data, work), fn)) {
    return NULL; /* a created promise is only left unsettled: nothing refers to it */
  }
  if (!ok(env, napi_queue_async_work(env, *work), fn)) {
    napi_delete_async_work(env, *work);
    return NULL;
  }
  return promise;
}

/*
 * A promise of call(c) run on libuv's pool, c holding `arg` and `strs` (each malloc'd or NULL;
 * owned by the call from here on, freed when it settles or here when it cannot be queued); NULL
 * with an exception pending when it cannot be queued.
 */
static napi_value queue_pool_call(napi_env env, const char *fn, int (*call)(const struct pool_call *), long arg,
                                  char *strs[4], bool as_boolean) {
  struct pool_call *c = calloc(1, sizeof *c);
  if (!c) {
    free_strs(strs);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  *c = (struct pool_call){.call = call, .arg = arg, .as_boolean = as_boolean, .fn = fn};
  memcpy(c->strs, strs, sizeof c->strs);
  napi_value promise = queue_work(env, fn, pool_call_execute, pool_call_complete, c, &c->deferred, &c->work);
  if (!promise) {
    free_strs(c->strs);
    free(c);
  }
  return promise;
}

static int trim_heap(const struct pool_call *c) {
  (void)c;
  return malloc_trim(0);
}

/* mallopt(param, value): 0, or -EINVAL when glibc refused the value (mallopt sets no errno). */
static napi_value js_mallopt(napi_env env, napi_callback_info info) {
  int32_t a[2];
  if (!int_args(env, info, 2, a, "mallopt")) return NULL;
  return num(env, mallopt(a[0], a[1]) == 1 ? 0 : -EINVAL);
}

/* mallocTrim() -> Promise<boolean>: malloc_trim(0) on a thread of libuv's pool. */
static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  (void)info;
  char *none[4] = {NULL};
  return queue_pool_call(env, "mallocTrim", trim_heap, 0, none, true);
}

/* shrinkHeap(): V8's incremental collection for memory, begun on this thread's isolate (v8-heap.cc). */
static napi_value js_shrink_heap(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  crib_heap_memory_pressure();
  return NULL;
}

/* releaseHeap(): V8's full collections for low memory, on this thread's isolate, done when it
 * returns (v8-heap.cc). */
static napi_value js_release_heap(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  crib_heap_low_memory();
  return NULL;
}

/* v8WorkersToBatch(): V8's worker threads switched to SCHED_BATCH (v8-workers.cc); how many, or
 * -errno. Waits for them: a few milliseconds when they are idle, a second at most. */
static napi_value js_v8_workers_to_batch(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, crib_v8_workers_to_batch());
}

static int syncfs_or_errno(const struct pool_call *c) {
  return syncfs((int)c->arg) < 0 ? -errno : 0;
}

/*
 * syncfsAsync(fd) -> Promise<number>: syncfs(fd) on a thread of libuv's pool, 0 or -errno. A
 * flush of a pull's layers takes 0.1 s to seconds: never on the event loop. The caller keeps fd
 * open until the promise settles.
 */
static napi_value js_syncfs_async(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_args(env, info, 1, &fd, "syncfsAsync")) return NULL;
  char *none[4] = {NULL};
  return queue_pool_call(env, "syncfsAsync", syncfs_or_errno, fd, none, false);
}

static int umount2_or_errno(const struct pool_call *c) {
  return umount2(c->strs[0], (int)c->arg) < 0 ? -errno : 0;
}

/*
 * umount2Async(target, flags) -> Promise<number>: umount2 on a thread of libuv's pool, 0 or
 * -errno. The last unmount of a writable overlay syncs its upper directory's whole filesystem
 * (overlayfs's sync_fs), which takes as long as the disk needs for everything dirty on it.
 */
static napi_value js_umount2_async(napi_env env, napi_callback_info info) {
  int32_t flags;
  char *target;
  if (!str_int_args(env, info, &target, &flags, "umount2Async")) return NULL;
  char *strs[4] = {target};
  return queue_pool_call(env, "umount2Async", umount2_or_errno, flags, strs, false);
}

/* ---- crash-safe files, on libuv's pool ---------------------------------------------------- */

/* Added to the errno of a directory's sync that failed after its rename was made: every errno is
 * below it (the kernel's MAX_ERRNO is 4095), so one result tells the two failures apart. */
#define SYNC_DIR_FAILED 4096

/* A crib_err's errno as the -errno a call returns (EIO for a failure that was no syscall's). */
static int neg_errno(const crib_err *err) {
  return -(err->errnum > 0 ? err->errnum : EIO);
}

struct prepare_call {
  napi_async_work work;
  napi_deferred deferred;
  char *path, *bytes; /* malloc'd, freed when the call settles */
  size_t len;
  mode_t mode;
  char tmp[NAME_MAX + 1]; /* the temp file's name, once made */
  int r;
};

static void free_prepare_call(struct prepare_call *c) {
  free(c->path);
  free(c->bytes);
  free(c);
}

static void prepare_call_execute(napi_env env, void *data) {
  (void)env;
  struct prepare_call *c = data;
  crib_err err = {0};
  c->r = crib_atomic_prepare(c->path, c->bytes, c->len, c->mode, c->tmp, sizeof c->tmp, &err) < 0 ? neg_errno(&err) : 0;
}

static void prepare_call_complete(napi_env env, napi_status status, void *data) {
  struct prepare_call *c = data;
  napi_value v = NULL;
  if (c->r < 0) v = settled_number(env, c->r);
  else if (napi_create_string_utf8(env, c->tmp, NAPI_AUTO_LENGTH, &v) != napi_ok) v = NULL;
  settle(env, c->deferred, status, v, "atomicPrepareAsync");
  napi_delete_async_work(env, c->work);
  free_prepare_call(c);
}

/*
 * atomicPrepareAsync(path, bytes, mode) -> Promise<string | number>: the first half of an atomic
 * write (crib_atomic_prepare, native/common/atomic-file.c): a temp file beside `path` holding
 * `bytes` (a Uint8Array, copied: the caller may reuse it at once) with exactly `mode`, synced, in
 * one trip to libuv's pool where node:fs takes an open, a write and a close each. Resolves with
 * the temp file's name, or -errno (no temp file left).
 */
static napi_value js_atomic_prepare_async(napi_env env, napi_callback_info info) {
  napi_value a[3];
  int32_t mode;
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  if (!args(env, info, 3, a, "atomicPrepareAsync") ||
      !get_i32(env, a[2], &mode, "atomicPrepareAsync: argument 3 is not an integer") ||
      !ok(env, napi_get_typedarray_info(env, a[1], &type, &len, &data, NULL, NULL), "atomicPrepareAsync: argument 2 is not a Uint8Array")) {
    return NULL;
  }
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "atomicPrepareAsync: argument 2 is not a Uint8Array");
    return NULL;
  }
  if ((mode & ~07777) != 0) {
    throw_errorf(env, "atomicPrepareAsync: mode %#o", (unsigned)mode);
    return NULL;
  }
  struct prepare_call *c = calloc(1, sizeof *c);
  if (!c) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  c->mode = (mode_t)mode;
  c->len = len;
  if (!get_str(env, a[0], &c->path, false, "atomicPrepareAsync: argument 1 is not a string without NUL bytes")) {
    free_prepare_call(c);
    return NULL;
  }
  c->bytes = malloc(len > 0 ? len : 1);
  if (!c->bytes) {
    free_prepare_call(c);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (len > 0) memcpy(c->bytes, data, len);
  napi_value promise = queue_work(env, "atomicPrepareAsync", prepare_call_execute, prepare_call_complete, c, &c->deferred, &c->work);
  if (!promise) free_prepare_call(c);
  return promise;
}

/* crib_atomic_commit(strs[0], strs[1], arg): 0, -errno of the rename, or -(SYNC_DIR_FAILED +
 * errno) of the directory's sync. */
static int atomic_commit_or_errno(const struct pool_call *c) {
  crib_err err = {0};
  int rc = crib_atomic_commit(c->strs[0], c->strs[1], c->arg != 0, &err);
  if (rc == -2) return neg_errno(&err) - SYNC_DIR_FAILED;
  return rc < 0 ? neg_errno(&err) : 0;
}

static int sync_dir_or_errno(const struct pool_call *c) {
  crib_err err = {0};
  return crib_sync_dir(c->strs[0], &err) < 0 ? neg_errno(&err) : 0;
}

/*
 * atomicCommitAsync(path, tmp, syncDir) -> Promise<number>: the second half (crib_atomic_commit):
 * the temp file named `tmp` renamed over `path`, then with `syncDir` their directory synced, in one
 * trip to libuv's pool. 0; -errno when the rename failed (the temp file removed); -(4096 + errno)
 * when only the sync failed.
 */
static napi_value js_atomic_commit_async(napi_env env, napi_callback_info info) {
  napi_value a[3];
  bool sync_dir;
  char *strs[4] = {NULL};
  if (!args(env, info, 3, a, "atomicCommitAsync") ||
      !ok(env, napi_get_value_bool(env, a[2], &sync_dir), "atomicCommitAsync: argument 3 is not a boolean")) {
    return NULL;
  }
  if (get_str(env, a[0], &strs[0], false, "atomicCommitAsync: path") && get_str(env, a[1], &strs[1], false, "atomicCommitAsync: tmp"))
    return queue_pool_call(env, "atomicCommitAsync", atomic_commit_or_errno, sync_dir, strs, false);
  free_strs(strs);
  return NULL;
}

/* syncDirAsync(dir) -> Promise<number>: the directory opened, synced and closed in one trip to
 * libuv's pool (crib_sync_dir); 0 or -errno. */
static napi_value js_sync_dir_async(napi_env env, napi_callback_info info) {
  napi_value a[1];
  char *strs[4] = {NULL};
  if (!args(env, info, 1, a, "syncDirAsync") || !get_str(env, a[0], &strs[0], false, "syncDirAsync: argument 1 is not a string without NUL bytes")) return NULL;
  return queue_pool_call(env, "syncDirAsync", sync_dir_or_errno, 0, strs, false);
}

/* ---- posix_spawn on libuv's pool ----------------------------------------------------------- */

struct spawn_call {
  napi_async_work work;
  napi_deferred deferred;
  char *path, **argv, **envp, *cwd; /* malloc'd (cwd NULL when not given): freed when the call settles */
  int fds[4];
  bool new_session;
  pid_t pid;
  int r; /* posix_spawn's result: 0 or an errno */
};

static void free_spawn_call(struct spawn_call *c) {
  free(c->path);
  free(c->cwd);
  free_strv(c->argv);
  free_strv(c->envp);
  free(c);
}

static void spawn_call_execute(napi_env env, void *data) {
  (void)env;
  struct spawn_call *c = data;
  c->r = spawn(&c->pid, c->path, c->argv, c->envp, c->fds, c->new_session, c->cwd);
}

static void spawn_call_complete(napi_env env, napi_status status, void *data) {
  struct spawn_call *c = data;
  napi_value v = NULL;
  if (napi_create_int32(env, c->r ? -c->r : (int32_t)c->pid, &v) != napi_ok) v = NULL;
  settle(env, c->deferred, status, v, "posixSpawnAsync");
  napi_delete_async_work(env, c->work);
  free_spawn_call(c);
}

/*
 * posixSpawnAsync(path, argv, envp, [stdin, stdout, stderr, fd3] (-1: none), newSession, cwd | null)
 * -> Promise<pid | -errno>: posix_spawn on a thread of libuv's pool. posix_spawn clones with
 * CLONE_VM|CLONE_VFORK, and the thread that calls it waits until the child has exec'd: 0.2 ms
 * of the event loop per helper on an idle node, twice that with 250 pods, where kubelet's exec
 * probes alone start 25 helpers a second. The descriptors must stay open until it settles.
 */
static napi_value js_posix_spawn_async(napi_env env, napi_callback_info info) {
  napi_value a[6];
  if (!args(env, info, 6, a, "posixSpawnAsync")) return NULL;
  struct spawn_call *c = calloc(1, sizeof *c);
  if (!c) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (!ok(env, napi_get_value_bool(env, a[4], &c->new_session), "posixSpawnAsync: newSession")) {
    free_spawn_call(c);
    return NULL;
  }
  for (uint32_t i = 0; i < 4; i++) {
    napi_value v;
    int32_t fd;
    if (!ok(env, napi_get_element(env, a[3], i, &v), "posixSpawnAsync: fds") || !get_i32(env, v, &fd, "posixSpawnAsync: fds")) {
      free_spawn_call(c);
      return NULL;
    }
    c->fds[i] = fd;
  }
  napi_value promise = NULL;
  if (get_str(env, a[0], &c->path, false, "posixSpawnAsync: path") && get_strv(env, a[1], &c->argv, "posixSpawnAsync: argv") &&
      get_strv(env, a[2], &c->envp, "posixSpawnAsync: envp") && get_str(env, a[5], &c->cwd, true, "posixSpawnAsync: cwd"))
    promise = queue_work(env, "posixSpawnAsync", spawn_call_execute, spawn_call_complete, c, &c->deferred, &c->work);
  if (!promise) free_spawn_call(c);
  return promise;
}

/* ---- calls over a list of paths, on libuv's pool ------------------------------------------ */

/* What a pool call over a list of paths begins with (the first member of its struct): its work,
 * its promise, and the paths (NULL-terminated, malloc'd), freed when it settles. */
struct paths_call {
  napi_async_work work;
  napi_deferred deferred;
  char **paths;
};

/* A promise of `execute` run on libuv's pool for `c` (calloc'd, beginning with a paths_call) over
 * `list`, a JavaScript array of paths (`what` names it in errors); NULL with an exception pending
 * when it is not one or the work cannot be queued, c freed then. */
static napi_value paths_call_queue(napi_env env, const char *fn, napi_async_execute_callback execute,
                                   napi_async_complete_callback complete, struct paths_call *c, napi_value list,
                                   const char *what) {
  napi_value promise = NULL;
  if (get_strv(env, list, &c->paths, what)) promise = queue_work(env, fn, execute, complete, c, &c->deferred, &c->work);
  if (!promise) {
    free_strv(c->paths);
    free(c);
  }
  return promise;
}

/* Settles `c`'s promise with `v` (rejects it when v is NULL or the call did not run) and frees c. */
static void paths_call_settle(napi_env env, struct paths_call *c, napi_status status, napi_value v, const char *fn) {
  settle(env, c->deferred, status, v, fn);
  napi_delete_async_work(env, c->work);
  free_strv(c->paths);
  free(c);
}

/* ---- every mount stacked on each of a list of paths, on libuv's pool ---------------------- */

/* Mounts one path may hold, one stacked on another, before unmountAll gives up on it: a pin
 * retried after an interrupted one leaves two; a path that keeps getting mounts is not ours. */
#define UNMOUNT_ALL_MAX 64

struct unmount_all_call {
  struct paths_call call; /* the targets */
  int flags;
  int failed; /* the index of the target that failed, or -1 */
  int err;    /* its errno (EBUSY: still mounted after UNMOUNT_ALL_MAX unmounts) */
};

static void unmount_all_execute(napi_env env, void *data) {
  (void)env;
  struct unmount_all_call *c = data;
  c->failed = -1;
  for (int i = 0; c->call.paths[i]; i++) {
    int n = 0;
    while (umount2(c->call.paths[i], c->flags) == 0) {
      if (++n == UNMOUNT_ALL_MAX) {
        c->err = EBUSY;
        break;
      }
    }
    /* Not a mount point (any more), or no such path: this one is done. */
    if (!c->err && (errno == EINVAL || errno == ENOENT)) continue;
    if (!c->err) c->err = errno;
    c->failed = i;
    return;
  }
}

/* null once every target is unmounted, else [index, errno] of the one that was not. */
static void unmount_all_complete(napi_env env, napi_status status, void *data) {
  struct unmount_all_call *c = data;
  napi_value v = NULL;
  if (c->failed < 0) {
    if (napi_get_null(env, &v) != napi_ok) v = NULL;
  } else {
    v = array_of(env, (napi_value[]){settled_number(env, c->failed), settled_number(env, c->err)}, 2);
  }
  paths_call_settle(env, &c->call, status, v, "unmountAllAsync");
}

/*
 * unmountAllAsync(targets, flags) -> Promise<null | [index, errno]>: umount2(target, flags) on
 * each target in turn, again while it succeeds (every mount stacked there), on one thread of
 * libuv's pool; stops at the first target that fails otherwise than not being a mount point. A
 * pod's pins in one trip: their lazy unmounts each wait for an RCU grace period.
 */
static napi_value js_unmount_all_async(napi_env env, napi_callback_info info) {
  napi_value a[2];
  int32_t flags;
  if (!args(env, info, 2, a, "unmountAllAsync") || !get_i32(env, a[1], &flags, "unmountAllAsync: flags")) return NULL;
  struct unmount_all_call *c = calloc(1, sizeof *c);
  if (!c) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  c->flags = flags;
  return paths_call_queue(env, "unmountAllAsync", unmount_all_execute, unmount_all_complete, &c->call, a[0],
                          "unmountAllAsync: targets");
}

static int mount_or_errno(const struct pool_call *c) {
  return mount(c->strs[0], c->strs[1], c->strs[2], (unsigned long)c->arg, c->strs[3]) < 0 ? -errno : 0;
}

/*
 * mountAsync(source, target, fstype | null, flags, data | null) -> Promise<number>: mount(2) on a
 * thread of libuv's pool, 0 or -errno. An overlay's mount checks each layer's filesystem for
 * mounts on it, as many as the node has pods (clone_private_mount), and a lazy unmount of a
 * namespace's pin waits for an RCU grace period: the event loop waits for neither.
 */
static napi_value js_mount_async(napi_env env, napi_callback_info info) {
  napi_value a[5];
  int64_t flags;
  char *strs[4] = {NULL};
  if (!args(env, info, 5, a, "mountAsync") || !get_i64(env, a[3], &flags, "mountAsync: flags")) return NULL;
  if (get_str(env, a[0], &strs[0], false, "mountAsync: source") && get_str(env, a[1], &strs[1], false, "mountAsync: target") &&
      get_str(env, a[2], &strs[2], true, "mountAsync: fstype") && get_str(env, a[4], &strs[3], true, "mountAsync: data"))
    return queue_pool_call(env, "mountAsync", mount_or_errno, (long)flags, strs, false);
  free_strs(strs);
  return NULL;
}

/* ---- disk usage of trees, on libuv's pool ----------------------------------------------- */

struct usage_call {
  struct paths_call call; /* the roots */
  uint32_t max_depth;
  struct crib_tree_usage usage;
  int r;
};

static void usage_call_execute(napi_env env, void *data) {
  (void)env;
  struct usage_call *c = data;
  int n = 0;
  while (c->call.paths[n]) n++;
  c->r = crib_tree_usage((const char *const *)c->call.paths, n, c->max_depth, &c->usage);
}

/* [bytes, inodes, tooDeep], or -errno. */
static void usage_call_complete(napi_env env, napi_status status, void *data) {
  struct usage_call *c = data;
  napi_value v = NULL, deep = NULL;
  if (c->r < 0) {
    v = settled_number(env, c->r);
  } else {
    if (napi_get_boolean(env, c->usage.too_deep, &deep) != napi_ok) deep = NULL;
    v = array_of(env, (napi_value[]){settled_number(env, (double)c->usage.bytes), settled_number(env, (double)c->usage.inodes), deep}, 3);
  }
  paths_call_settle(env, &c->call, status, v, "treeUsageAsync");
}

/*
 * treeUsageAsync(roots, maxDepth) -> Promise<[bytes, inodes, tooDeep] | number>: the disk usage of
 * the trees at `roots` (tree-usage.c), entered down to maxDepth levels, walked on a thread of
 * libuv's pool; -errno when a walk failed. Bytes and inodes as numbers: exact up to 2^53.
 */
static napi_value js_tree_usage_async(napi_env env, napi_callback_info info) {
  napi_value a[2];
  int32_t max_depth;
  if (!args(env, info, 2, a, "treeUsageAsync") ||
      !get_i32(env, a[1], &max_depth, "treeUsageAsync: argument 2 is not an integer")) {
    return NULL;
  }
  if (max_depth < 0) {
    throw_errorf(env, "treeUsageAsync: a depth of %d levels", max_depth);
    return NULL;
  }
  struct usage_call *c = calloc(1, sizeof *c);
  if (!c) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  c->max_depth = (uint32_t)max_depth;
  return paths_call_queue(env, "treeUsageAsync", usage_call_execute, usage_call_complete, &c->call, a[0],
                          "treeUsageAsync: argument 1 is not an array of strings without NUL bytes");
}

/* ---- module -------------------------------------------------------------------------------- */

NAPI_MODULE_INIT() {
  const napi_property_descriptor fns[] = {
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lremovexattr", NULL, js_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mountAsync", NULL, js_mount_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2Async", NULL, js_umount2_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unmountAllAsync", NULL, js_unmount_all_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openat2", NULL, js_openat2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openTree", NULL, js_open_tree, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mountSetattr", NULL, js_mount_setattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"moveMount", NULL, js_move_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncfsAsync", NULL, js_syncfs_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"atomicPrepareAsync", NULL, js_atomic_prepare_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"atomicCommitAsync", NULL, js_atomic_commit_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncDirAsync", NULL, js_sync_dir_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"treeUsageAsync", NULL, js_tree_usage_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fcntl", NULL, js_fcntl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"memfdCreate", NULL, js_memfd_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pipe2", NULL, js_pipe2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketpair", NULL, js_socketpair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"receiveFd", NULL, js_receive_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sealedCopy", NULL, js_sealed_copy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreadNice", NULL, js_set_thread_nice, NULL, NULL, NULL, napi_enumerable, NULL},
      {"execve", NULL, js_execve, NULL, NULL, NULL, napi_enumerable, NULL},
      {"posixSpawnAsync", NULL, js_posix_spawn_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"waitpidNoHang", NULL, js_waitpid_nohang, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mallocTrim", NULL, js_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mallopt", NULL, js_mallopt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"shrinkHeap", NULL, js_shrink_heap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"releaseHeap", NULL, js_release_heap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"v8WorkersToBatch", NULL, js_v8_workers_to_batch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) != napi_ok) return NULL;
  return exports;
}
