/* A pod's host ports, from crib-pinns's side: the options are checked here (the parser
 * crib-hostports uses too, common/hostport-opts.c) before the attach makes anything, and the
 * rules themselves are made and removed by crib-hostports (native/hostports/), run from here with
 * the same options: after the veth on attach, before it on detach.
 *
 * Why a second binary: nftables rules go through libnftables, loaded with dlopen, and a static
 * glibc's dlopen needs the very glibc it was built with at run time. Without it crib-pinns, run
 * at every pod's start and stop, is a static PIE, which skips the dynamic loader's work: about
 * 2 ms of every RunPodSandbox on this project's machine (bench/remove-ab.ts, N=30: 19.4 -> 17.2
 * ms). A pod with host ports pays for one more exec instead, about as much as the dlopen of
 * libnftables and its libraries did. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "pinns.h"

/* What the helper says on stderr, kept for the error it becomes. */
#define HELPER_MESSAGE_MAX 2048

/* The host-port options, spelt as both binaries take them. */
static const char *const OPTIONS[] = {"--nft-table", "--nft-family", "--hostport-chain", "--hostport"};

int pinns_hostports_set(struct hostport_opts *o, const char *name, const char *value, crib_err *err) {
  if (strcmp(name, "nft-helper") == 0) {
    if (value[0] != '/') return crib_fail(err, 0, "--nft-helper `%s`: an absolute path is required", value);
    o->helper = value;
    return 0;
  }
  int r = crib_hostport_opt_set(&o->parsed, name, value, err);
  if (r != 0) return r;
  for (size_t i = 0; i < sizeof OPTIONS / sizeof *OPTIONS; i++)
    if (strcmp(OPTIONS[i] + 2, name) == 0) {
      /* The parser bounds the ports (CRIB_MAX_HOSTPORTS) and the families (two, a repeated one
       * is refused); a repeated table or chain replaces the one before, in the helper too, but
       * takes room here: args fits the daemon's options with some to spare, and no more. */
      if (o->nargs + 2 > sizeof o->args / sizeof *o->args) return crib_fail(err, 0, "too many host-port options");
      o->args[o->nargs++] = OPTIONS[i];
      o->args[o->nargs++] = value;
    }
  return 0;
}

int pinns_hostports_check(const struct hostport_opts *o, crib_err *err) {
  if (crib_hostport_opts_check(&o->parsed, err) < 0) return -1;
  if (o->parsed.table != NULL && o->helper == NULL)
    return crib_fail(err, 0, "host ports: --nft-helper (the crib-hostports binary) is required with --nft-table");
  return 0;
}

/* Read the helper's stderr to its end, keeping the first HELPER_MESSAGE_MAX - 1 bytes. */
static void read_message(int fd, char *buf, size_t size) {
  size_t len = 0;
  for (;;) {
    char chunk[512];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size_t take = (size_t)n < size - 1 - len ? (size_t)n : size - 1 - len;
    memcpy(buf + len, chunk, take);
    len += take;
  }
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) len--;
  buf[len] = '\0';
}

/* Run `<helper> <verb> <options> [--pod-ip IP...]` and wait for it; its stderr becomes the error. */
static int run_helper(const struct hostport_opts *o, const char *verb, const struct pod_net_opts *net, crib_err *err) {
  static const char *argv[2 * (CRIB_MAX_HOSTPORTS + 8) + 2 * PINNS_MAX_POD_ADDRS + 3];
  static char ips[PINNS_MAX_POD_ADDRS][INET6_ADDRSTRLEN];
  size_t a = 0;
  argv[a++] = o->helper;
  argv[a++] = verb;
  for (size_t i = 0; i < o->nargs; i++) argv[a++] = o->args[i];
  for (size_t i = 0; net != NULL && i < net->naddrs; i++) {
    if (inet_ntop(net->addrs[i].family, net->addrs[i].addr, ips[i], sizeof ips[i]) == NULL)
      return crib_fail(err, errno, "inet_ntop (pod address)");
    argv[a++] = "--pod-ip";
    argv[a++] = ips[i];
  }
  argv[a] = NULL;

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) return crib_fail(err, errno, "pipe for `%s`", o->helper);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, all;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc == 0) {
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) posix_spawn_file_actions_destroy(&fa);
  }
  if (rc != 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return crib_fail(err, rc, "posix_spawn set-up for `%s`", o->helper);
  }
  /* stdin and stdout from /dev/null: stdout is the daemon's pipe (PINNS_PORTS_REMOVED); stderr
   * to us; nothing else open; no signal blocked or ignored. */
  sigemptyset(&none);
  sigfillset(&all);
  if ((rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
      (rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) == 0 &&
      (rc = posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2)) == 0 &&
      (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0 && (rc = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
      (rc = posix_spawnattr_setsigdefault(&attr, &all)) == 0 &&
      (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0) {
    pid_t pid;
    rc = posix_spawn(&pid, o->helper, &fa, &attr, (char *const *)argv, (char *const[]){NULL});
    close(pipefd[1]);
    pipefd[1] = -1;
    if (rc == 0) {
      char message[HELPER_MESSAGE_MAX];
      read_message(pipefd[0], message, sizeof message);
      int status;
      pid_t w;
      do w = waitpid(pid, &status, 0);
      while (w < 0 && errno == EINTR);
      if (w < 0) rc = crib_fail(err, errno, "waitpid `%s`", o->helper);
      else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (message[0] != '\0') rc = crib_fail(err, 0, "%s", message);
        else if (WIFSIGNALED(status)) rc = crib_fail(err, 0, "`%s %s` was killed by signal %d", o->helper, verb, WTERMSIG(status));
        else rc = crib_fail(err, 0, "`%s %s` exited with status %d", o->helper, verb, WEXITSTATUS(status));
      }
    } else {
      rc = crib_fail(err, rc, "posix_spawn `%s`", o->helper);
    }
  } else {
    rc = crib_fail(err, rc, "posix_spawn set-up for `%s`", o->helper);
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[0]);
  if (pipefd[1] >= 0) close(pipefd[1]);
  return rc < 0 ? -1 : 0;
}

int pinns_hostports_install(const struct hostport_opts *o, const struct pod_net_opts *net, crib_err *err) {
  if (o->parsed.table == NULL) return 0;
  return run_helper(o, "install", net, err);
}

int pinns_hostports_remove(const struct hostport_opts *o, crib_err *err) {
  if (o->parsed.table == NULL) return 0;
  return run_helper(o, "remove", NULL, err);
}
