/* crib-pinns command line:
 *   crib-pinns --dir DIR [--net] [--ipc] [--uts] [--hostname NAME] [--sysctl KEY=VALUE]...
 *              [--user --uid-map IN:OUT:COUNT... --gid-map IN:OUT:COUNT...]
 *              [--bridge B --host-if NAME [--mtu N] --addr IP/LEN[,nodad]... [--gw IP]...]
 *              (with --net: attach the new network namespace to bridge B, see pod-net.c)
 *   crib-pinns --remove DIR
 *   crib-pinns pod-net attach --netns FILE --bridge B --host-if NAME [--mtu N]
 *              --addr IP/LEN[,nodad]... [--gw IP]...
 *              [--nft-helper PATH --nft-table T --nft-family ip|ip6... --hostport-chain C
 *               --hostport PROTO:HOSTPORT:CONTAINERPORT[:HOSTIP]...]   (the pod's host ports, which
 *               crib-hostports at PATH writes)
 *   crib-pinns pod-net detach --host-if NAME [--nft-helper PATH --nft-table T --nft-family ip|ip6... --hostport-chain C]
 *              (with the host-port options: "host ports removed" on stdout once they are, before
 *              the veth is deleted)
 *   crib-pinns pod-init --dir DIR
 *   crib-pinns netns-exec FILE COMMAND [ARG]...
 *   crib-pinns port-forward FILE PORT      (the connection goes back over fd 3)
 * Errors: "crib-pinns: <what>: <strerror>" on stderr and exit status 1. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "crib-sealed-exe.h"
#include "pinns.h"

static void usage(void) {
  fprintf(stderr,
          "usage: " PINNS_PROG " --dir DIR [--net] [--ipc] [--uts] [--hostname NAME] "
          "[--sysctl KEY=VALUE]...\n"
          "              [--user --uid-map IN:OUT:COUNT... --gid-map IN:OUT:COUNT...]\n"
          "              [--bridge B --host-if NAME [--mtu N] --addr IP/LEN[,nodad]... [--gw IP]...\n"
          "               [--nft-helper PATH --nft-table T --nft-family ip|ip6... --hostport-chain C --hostport P:HP:CP[:HOSTIP]...]]\n"
          "       " PINNS_PROG " --remove DIR\n"
          "       " PINNS_PROG " pod-net attach --netns FILE --bridge B --host-if NAME [--mtu N] "
          "--addr IP/LEN[,nodad]... [--gw IP]... [host ports as above]\n"
          "       " PINNS_PROG " pod-net detach --host-if NAME [--nft-helper PATH --nft-table T --nft-family ip|ip6... --hostport-chain C]\n"
          "       " PINNS_PROG " pod-init --dir DIR\n"
          "       " PINNS_PROG " netns-exec FILE COMMAND [ARG]...\n"
          "       " PINNS_PROG " port-forward FILE PORT\n");
}

static int fail_usage(crib_err *err, const char *what) {
  crib_fail(err, 0, "%s", what);
  crib_err_print(PINNS_PROG, err);
  usage();
  return 1;
}

/* An argument error already recorded in err. */
static int usage_error(const crib_err *err) {
  crib_err_print(PINNS_PROG, err);
  usage();
  return 1;
}

static int cmd_pod_init(int argc, char **argv) {
  crib_err err = {0};
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
      dir = argv[++i];
    else
      return fail_usage(&err, "pod-init: unknown or incomplete argument");
  }
  if (dir == NULL) return fail_usage(&err, "pod-init: --dir is required");
  int pid = -1;
  if (pinns_pod_init(dir, &pid, &err) < 0) {
    crib_err_print(PINNS_PROG, &err);
    return 1;
  }
  printf("%d\n", pid);
  if (fflush(stdout) != 0) return 1;
  return 0;
}

static int cmd_netns_exec(int argc, char **argv) {
  crib_err err = {0};
  if (argc < 3) return fail_usage(&err, "netns-exec: a namespace file and a command are required");
  pinns_netns_exec(argv[1], argv + 2, &err);
  crib_err_print(PINNS_PROG, &err);
  return 1;
}

/* pod-net attach|detach, options as "--name value" pairs (pod-net.c checks the values). */
static int cmd_pod_net(int argc, char **argv) {
  crib_err err = {0};
  static struct pod_net_opts o;
  if (argc < 2 || (strcmp(argv[1], "attach") != 0 && strcmp(argv[1], "detach") != 0))
    return fail_usage(&err, "pod-net: attach or detach is required");
  bool attach = strcmp(argv[1], "attach") == 0;
  for (int i = 2; i < argc; i += 2) {
    if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) {
      crib_fail(&err, 0, "pod-net %s: `%s` is not an option with a value", argv[1], argv[i]);
      return usage_error(&err);
    }
    if (!attach && strcmp(argv[i], "--host-if") != 0 && strcmp(argv[i], "--nft-table") != 0 &&
        strcmp(argv[i], "--nft-family") != 0 && strcmp(argv[i], "--hostport-chain") != 0 &&
        strcmp(argv[i], "--nft-helper") != 0) {
      crib_fail(&err, 0, "pod-net detach: unknown option `%s` (only --host-if and the host-port helper, table, family and chain)",
                argv[i]);
      return usage_error(&err);
    }
    if (pinns_pod_net_set(&o, argv[i] + 2, argv[i + 1], &err) < 0) {
      crib_err_wrap(&err, "pod-net %s", argv[1]);
      return usage_error(&err);
    }
  }
  int ret;
  if (attach) ret = pinns_pod_net_attach(&o, &err);
  else if (o.host_if == NULL) return fail_usage(&err, "pod-net detach: --host-if is required");
  else ret = pinns_pod_net_detach(&o, &err);
  if (ret < 0) {
    crib_err_print(PINNS_PROG, &err);
    return 1;
  }
  return 0;
}

static int cmd_port_forward(int argc, char **argv) {
  crib_err err = {0};
  if (argc != 3) return fail_usage(&err, "port-forward: a namespace file and a port are required");
  if (pinns_port_forward(argv[1], argv[2], &err) < 0) {
    crib_err_print(PINNS_PROG, &err);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  crib_err err = {0};
  /* Run from the daemon's sealed copy (/proc/<pid>/fd/<n>), the process would be named after the
   * fd number; ps should show what it is. Cosmetic: a failure changes nothing else. */
  if (prctl(PR_SET_NAME, PINNS_PROG, 0, 0, 0) < 0) errno = 0;
  /* pod-init is PID 1 of a shared-PID pod for the pod's whole life: every container of the pod
   * sees it as /proc/1/exe, so it runs from a sealed memfd copy of this binary, non-dumpable
   * (crib-sealed-exe.h). The other verbs never become visible to a container: the pin child,
   * netns-exec and port-forward join only network/IPC/UTS namespaces and stay in the host's PID
   * namespace, where no container's /proc reaches. */
  if (argc > 1 && strcmp(argv[1], "pod-init") == 0) {
    if (crib_guard_host_binary(PINNS_PROG, argv, &err) < 0) {
      crib_err_print(PINNS_PROG, &err);
      return 1;
    }
    return cmd_pod_init(argc - 1, argv + 1);
  }
  if (argc > 1 && strcmp(argv[1], "netns-exec") == 0) return cmd_netns_exec(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "pod-net") == 0) return cmd_pod_net(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "port-forward") == 0) return cmd_port_forward(argc - 1, argv + 1);

  static const struct option longopts[] = {
      {"dir", required_argument, NULL, 'd'},      {"remove", required_argument, NULL, 'r'},
      {"net", no_argument, NULL, 'n'},            {"ipc", no_argument, NULL, 'i'},
      {"uts", no_argument, NULL, 'u'},            {"hostname", required_argument, NULL, 'h'},
      {"sysctl", required_argument, NULL, 's'},   {"user", no_argument, NULL, 'U'},
      {"uid-map", required_argument, NULL, 'm'},  {"gid-map", required_argument, NULL, 'g'},
      {"bridge", required_argument, NULL, 'B'},   {"host-if", required_argument, NULL, 'H'},
      {"mtu", required_argument, NULL, 'M'},      {"addr", required_argument, NULL, 'A'},
      {"gw", required_argument, NULL, 'G'},       {"nft-table", required_argument, NULL, 'T'},
      {"nft-family", required_argument, NULL, 'F'}, {"hostport-chain", required_argument, NULL, 'C'},
      {"hostport", required_argument, NULL, 'P'}, {"nft-helper", required_argument, NULL, 'N'},
      {NULL, 0, NULL, 0},
  };
  struct pin_opts opts = {0};
  static struct pod_net_opts net;
  const char *remove_dir = NULL;
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'd': opts.dir = optarg; break;
    case 'r': remove_dir = optarg; break;
    case 'n': opts.want[0] = true; break;
    case 'i': opts.want[1] = true; break;
    case 'u': opts.want[2] = true; break;
    case 'h': opts.hostname = optarg; break;
    case 'U': opts.want[PINNS_USER] = true; break;
    case 'm':
    case 'g':
      if (pinns_id_map_add(c == 'm' ? &opts.uids : &opts.gids, optarg, c == 'm' ? "--uid-map" : "--gid-map",
                           &err) < 0) {
        crib_err_print(PINNS_PROG, &err);
        return 1;
      }
      break;
    case 's':
      if (opts.nsysctls == PINNS_MAX_SYSCTLS) return fail_usage(&err, "too many --sysctl options");
      opts.sysctls[opts.nsysctls++] = optarg;
      break;
    case 'B':
    case 'H':
    case 'M':
    case 'A':
    case 'G':
    case 'T':
    case 'F':
    case 'C':
    case 'P':
    case 'N': {
      const char *name = c == 'B'   ? "bridge"
                         : c == 'H' ? "host-if"
                         : c == 'M' ? "mtu"
                         : c == 'A' ? "addr"
                         : c == 'G' ? "gw"
                         : c == 'T' ? "nft-table"
                         : c == 'F' ? "nft-family"
                         : c == 'C' ? "hostport-chain"
                         : c == 'N' ? "nft-helper"
                                    : "hostport";
      if (pinns_pod_net_set(&net, name, optarg, &err) < 0) return usage_error(&err);
      opts.net = &net;
      break;
    }
    default: return fail_usage(&err, "unknown option or missing argument");
    }
  }
  if (optind != argc) return fail_usage(&err, "unexpected positional argument");

  if (remove_dir != NULL) {
    if (opts.dir != NULL) return fail_usage(&err, "--remove and --dir are exclusive");
    if (pinns_remove(remove_dir, &err) < 0) {
      crib_err_print(PINNS_PROG, &err);
      return 1;
    }
    return 0;
  }
  if (opts.dir == NULL) return fail_usage(&err, "--dir is required");
  if (pinns_pin(&opts, &err) < 0) {
    crib_err_print(PINNS_PROG, &err);
    return 1;
  }
  return 0;
}
