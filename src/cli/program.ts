// The `crib` command tree (commander): every verb, its arguments, options and help. Each verb's
// code is imported only when that verb runs, so `crib ps` does not load the pull display and
// `crib completion` loads no gRPC at all.
import { Command, CommanderError, Option } from 'commander';
import { CRIB_VERSION } from '../version.js';
import { EXIT_USAGE, explain } from './cli-error.js';
import { Context, outputOf, type GlobalOptions } from './context.js';
import { collect } from './filters.js';
import { print } from './output.js';

let lastAddress = '(unknown address)';

type Opts = Record<string, unknown>;

/**
 * An action that talks to the daemon: positional args and options in, an exit code (or nothing
 * for 0) out. The Context is opened from the global options and closed afterwards.
 */
function verb(fn: (ctx: Context, args: unknown[], opts: Opts) => Promise<number | void>) {
  return async (...all: unknown[]): Promise<void> => {
    const cmd = all[all.length - 1] as Command;
    const opts = cmd.opts();
    const ctx = await Context.open(cmd.optsWithGlobals<GlobalOptions>());
    lastAddress = ctx.address;
    try {
      const code = await fn(ctx, all.slice(0, -2), opts);
      if (typeof code === 'number') process.exitCode = code;
    } finally {
      ctx.close();
    }
  };
}

const outputOption = (dflt: string) =>
  new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default(dflt);

const verbs = {
  info: () => import('./verbs/info.js'),
  images: () => import('./verbs/images.js'),
  pods: () => import('./verbs/pods.js'),
  containers: () => import('./verbs/containers.js'),
  logs: () => import('./verbs/logs.js'),
  streams: () => import('./verbs/streams.js'),
  kube: () => import('./verbs/kube.js'),
};

/** Defaults of the kube verbs (constants here, so `crib --help` loads none of src/kube/). */
const KUBE_STATE_DIR = '/var/lib/crib/kube';
const POD_LOG_ROOT = '/var/log/pods';

export function buildProgram(): Command {
  const program = new Command('crib')
    .description('crib: a Kubernetes container runtime. "crib daemon" serves the CRI; the other verbs talk to it, like crictl.')
    .version(CRIB_VERSION, '--version', 'print the crib command\'s version')
    .option('--address <address>', 'the daemon\'s socket (default: grpc.address of the config file)')
    .option('--config <file>', 'the config file to read the address from (default: /etc/crib/config.toml)')
    .option('--request-timeout <duration>', 'how long to wait for each answer of the daemon', '2m')
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`crib: ${str.replace(/^error: /, '')}`) });

  program.command('daemon')
    .description('run the CRI server (the daemon) in the foreground until SIGTERM or SIGINT')
    .option('--config <file>', 'config file (default: /etc/crib/config.toml)')
    .option('--listen <address>', 'gRPC address, overrides grpc.address')
    .option('--root <dir>', 'persistent state, overrides root')
    .option('--state <dir>', 'runtime state, overrides state')
    .action(async (opts: { config?: string; listen?: string; root?: string; state?: string }) => {
      const { runDaemon } = await import('./daemon-command.js');
      await runDaemon(opts);
    });

  program.command('version').description('print the daemon\'s runtime name and versions')
    .addOption(outputOption('table'))
    .action(verb(async (ctx, _a, o) => (await verbs.info()).version(ctx, outputOf(o))));
  program.command('info').description('print the daemon\'s status and configuration')
    .addOption(outputOption('json'))
    .action(verb(async (ctx, _a, o) => (await verbs.info()).info(ctx, outputOf(o))));

  // ---- images
  program.command('pull').description('pull an image, with progress (per layer on a terminal)')
    .argument('<image>', 'image reference, e.g. docker.io/library/busybox:latest')
    .option('--creds <user:password>', 'registry credentials')
    .option('--auth <base64>', 'registry credentials as base64 of user:password')
    .option('-q, --quiet', 'print only the image id')
    .action(verb(async (ctx, [image], o) => (await verbs.images()).pull(ctx, image as string, o)));
  program.command('images').alias('img').description('list images')
    .argument('[image]', 'only this image (reference or id)')
    .option('-q, --quiet', 'print only image ids')
    .option('--digests', 'show digests')
    .option('--no-trunc', 'do not shorten ids')
    .addOption(outputOption('table'))
    .action(verb(async (ctx, [image], o) =>
      (await verbs.images()).listImages(ctx, image as string | undefined, { quiet: o.quiet as boolean, digests: o.digests as boolean, noTrunc: o.trunc === false }, outputOf(o))));
  program.command('inspecti').description('show an image\'s status and config')
    .argument('<image...>', 'image references or ids (a unique id prefix is enough)')
    .addOption(outputOption('json'))
    .action(verb(async (ctx, [refs], o) => (await verbs.images()).inspectImages(ctx, refs as string[], outputOf(o))));
  program.command('rmi').description('remove images')
    .argument('[image...]', 'image references or ids')
    .option('-a, --all', 'remove every image')
    .action(verb(async (ctx, [refs], o) => (await verbs.images()).removeImages(ctx, (refs as string[]) ?? [], o)));
  const image = program.command('image').description('image archives: import and export');
  image.command('import').description('load every image of an OCI layout or "docker save" tar through the daemon')
    .argument('<archive>', 'path of the tar on this host')
    .action(verb(async (ctx, [archive]) => (await verbs.images()).importImage(ctx, archive as string)));
  image.command('export').description('write an image as an OCI layout tar (a new file), through the daemon')
    .argument('<image>', 'image reference or id')
    .argument('<archive>', 'path of the tar to create on this host')
    .action(verb(async (ctx, [img, archive]) => (await verbs.images()).exportImage(ctx, img as string, archive as string)));

  // ---- pods
  const podFilters = (c: Command) => c
    .option('--name <regex>', 'only pods whose name matches')
    .option('--namespace <namespace>', 'only pods in this namespace')
    .option('--label <key=value>', 'only pods with this label (repeatable)', collect)
    .option('--state <state>', 'only pods in this state: ready, notready')
    .option('--id <id>', 'only this pod (id prefix)');
  podFilters(program.command('pods').description('list pod sandboxes'))
    .option('-q, --quiet', 'print only pod ids')
    .option('-l, --latest', 'only the most recently created pod')
    .option('--no-trunc', 'do not shorten ids')
    .addOption(outputOption('table'))
    .action(verb(async (ctx, _a, o) => (await verbs.pods()).listPods(ctx, { ...o, noTrunc: o.trunc === false } as never, outputOf(o))));
  program.command('inspectp').description('show a pod sandbox\'s status')
    .argument('<pod...>', 'pod ids (a unique prefix) or names')
    .addOption(outputOption('json'))
    .action(verb(async (ctx, [ids], o) => (await verbs.pods()).inspectPods(ctx, ids as string[], outputOf(o))));
  program.command('runp').description('run a pod sandbox from a JSON or YAML PodSandboxConfig; prints its id')
    .argument('<pod-config>', 'file with the PodSandboxConfig')
    .option('-r, --runtime <handler>', 'RuntimeClass handler')
    .action(verb(async (ctx, [path], o) => print(`${await (await verbs.pods()).runPod(ctx, path as string, o)}\n`)));
  program.command('stopp').description('stop pod sandboxes (their containers stop too)')
    .argument('[pod...]', 'pod ids or names')
    .option('-a, --all', 'stop every pod')
    .action(verb(async (ctx, [ids], o) => (await verbs.pods()).stopPods(ctx, (ids as string[]) ?? [], o)));
  program.command('rmp').description('remove pod sandboxes and their containers')
    .argument('[pod...]', 'pod ids or names')
    .option('-a, --all', 'remove every pod')
    .option('-f, --force', 'stop running pods first')
    .action(verb(async (ctx, [ids], o) => (await verbs.pods()).removePods(ctx, (ids as string[]) ?? [], o)));
  program.command('statsp').description('show pod resource usage')
    .option('--id <id>', 'only this pod')
    .option('--label <key=value>', 'only pods with this label (repeatable)', collect)
    .addOption(outputOption('table'))
    .action(verb(async (ctx, _a, o) => (await verbs.pods()).podStats(ctx, o, outputOf(o))));

  // ---- containers
  program.command('ps').description('list containers (running ones unless -a)')
    .option('-a, --all', 'show every container, not only running ones')
    .option('--name <regex>', 'only containers whose name matches')
    .option('--label <key=value>', 'only containers with this label (repeatable)', collect)
    .option('--state <state>', 'only containers in this state: created, running, exited, unknown')
    .option('-p, --pod <pod>', 'only containers of this pod (id prefix or name)')
    .option('--id <id>', 'only this container (id prefix)')
    .option('--image <image>', 'only containers of this image')
    .option('-q, --quiet', 'print only container ids')
    .option('-l, --latest', 'only the most recently created container')
    .option('--no-trunc', 'do not shorten ids')
    .addOption(outputOption('table'))
    .action(verb(async (ctx, _a, o) => (await verbs.containers()).listContainers(ctx, { ...o, noTrunc: o.trunc === false } as never, outputOf(o))));
  program.command('inspect').description('show a container\'s status')
    .argument('<container...>', 'container ids (a unique prefix) or names')
    .addOption(outputOption('json'))
    .action(verb(async (ctx, [ids], o) => (await verbs.containers()).inspectContainers(ctx, ids as string[], outputOf(o))));
  program.command('create').description('create a container in a pod from JSON or YAML configs; prints its id')
    .argument('<pod>', 'pod id or name')
    .argument('<container-config>', 'file with the ContainerConfig')
    .argument('<pod-config>', 'file with the pod\'s PodSandboxConfig')
    .option('--no-pull', 'do not pull the image when the node lacks it')
    .action(verb(async (ctx, [pod, c, p], o) =>
      print(`${await (await verbs.containers()).createContainer(ctx, pod as string, c as string, p as string, { noPull: o.pull === false })}\n`)));
  program.command('run').description('run a pod and one container in it (runp + pull + create + start); prints the container id')
    .argument('<container-config>', 'file with the ContainerConfig')
    .argument('<pod-config>', 'file with the PodSandboxConfig')
    .option('-r, --runtime <handler>', 'RuntimeClass handler')
    .option('--no-pull', 'do not pull the image when the node lacks it')
    .action(verb(async (ctx, [c, p], o) =>
      print(`${await (await verbs.containers()).runContainer(ctx, c as string, p as string, { runtime: o.runtime as string | undefined, noPull: o.pull === false })}\n`)));
  program.command('start').description('start created containers')
    .argument('<container...>', 'container ids or names')
    .action(verb(async (ctx, [ids]) => (await verbs.containers()).startContainers(ctx, ids as string[])));
  program.command('stop').description('stop running containers')
    .argument('[container...]', 'container ids or names')
    .option('-t, --timeout <seconds>', 'seconds to wait after SIGTERM before SIGKILL', '0')
    .option('-a, --all', 'stop every container')
    .action(verb(async (ctx, [ids], o) => (await verbs.containers()).stopContainers(ctx, (ids as string[]) ?? [], o)));
  program.command('rm').description('remove containers')
    .argument('[container...]', 'container ids or names')
    .option('-f, --force', 'stop running containers first')
    .option('-a, --all', 'remove every container')
    .action(verb(async (ctx, [ids], o) => (await verbs.containers()).removeContainers(ctx, (ids as string[]) ?? [], o)));
  program.command('stats').description('show container resource usage')
    .argument('[container...]', 'only these containers')
    .option('-p, --pod <pod>', 'only containers of this pod')
    .option('--label <key=value>', 'only containers with this label (repeatable)', collect)
    .addOption(outputOption('table'))
    .action(verb(async (ctx, [ids], o) => (await verbs.containers()).containerStats(ctx, (ids as string[]) ?? [], o, outputOf(o))));
  program.command('logs').description('print a container\'s logs (from its CRI log file on this host)')
    .argument('<container>', 'container id or name')
    .option('-f, --follow', 'keep printing new lines until the container stops')
    .option('--tail <lines>', 'only the last N lines (-1: all)', '-1')
    .option('--since <time>', 'only lines since a time (RFC 3339) or for a duration back ("10s", "5m", "2h")')
    .option('-t, --timestamps', 'prefix each line with its time')
    .action(verb(async (ctx, [id], o) => (await verbs.logs()).logs(ctx, id as string, o)));
  program.command('exec').description('run a command in a running container; exits with its exit code')
    .argument('<container>', 'container id or name')
    .argument('<command...>', 'the command and its arguments')
    .option('-i, --interactive', 'send stdin to the command')
    .option('-t, --tty', 'run the command in a terminal')
    .option('-s, --sync', 'run with ExecSync (no streaming)')
    .option('--timeout <seconds>', 'with --sync: kill the command after this many seconds (0: never)', '0')
    .passThroughOptions()
    .action(verb(async (ctx, [id, cmd], o) => (await verbs.streams()).exec(ctx, id as string, cmd as string[], o)));
  program.command('attach').description('attach to a running container\'s output (and stdin with -i)')
    .argument('<container>', 'container id or name')
    .option('-i, --interactive', 'send stdin to the container')
    .option('-t, --tty', 'the container runs in a terminal')
    .action(verb(async (ctx, [id], o) => (await verbs.streams()).attach(ctx, id as string, o)));
  program.command('port-forward').description('forward local ports to a pod\'s ports until interrupted')
    .argument('<pod>', 'pod id or name')
    .argument('<ports...>', '[LOCAL_PORT:]POD_PORT, e.g. 8080:80')
    .option('--bind <address>', 'local address to listen on', '127.0.0.1')
    .action(verb(async (ctx, [pod, ports], o) => (await verbs.streams()).portForward(ctx, pod as string, ports as string[], o)));

  // ---- kube: Pod manifests on this node, without a cluster
  const kube = program.command('kube').description('run Kubernetes Pod manifests on this node without a cluster, translated to CRI calls as kubelet makes them');
  const stateDirOption = (c: Command) => c.option('--state-dir <dir>', 'where played pods are recorded', KUBE_STATE_DIR);
  stateDirOption(kube.command('play').description('run the pods of a manifest (Pods, or a Deployment/ReplicaSet/Job template with one replica); a supervisor process keeps them running')
    .argument('<manifest>', 'YAML file: Pod documents separated by ---')
    .option('--configmap <file>', 'a ConfigMap manifest the pods use (repeatable)', collect)
    .option('--secret <file>', 'a Secret manifest the pods use (repeatable)', collect)
    .option('--wait', 'return when every pod is Ready (or fail with the failing container\'s last log lines)')
    .option('--timeout <duration>', 'with --wait: how long to wait', '5m')
    .option('--pod-log-dir <dir>', 'root of the pods\' log directories, as kubelet\'s', POD_LOG_ROOT)
    .option('--resolv-conf <file>', 'the resolv.conf whose servers, searches and options the pods get (dnsPolicy Default)', '/etc/resolv.conf')
    .option('--backoff-base <duration>', 'first crash-loop back-off step (kubelet: 10s)', '10s')
    .option('--backoff-max <duration>', 'longest crash-loop back-off (kubelet: 5m)', '5m'))
    .action(verb(async (ctx, [manifest], o) => (await verbs.kube()).play(ctx, manifest as string, o as never)));
  stateDirOption(kube.command('down').description('remove exactly what "kube play" made for a manifest\'s pods: supervisor, sandbox, containers, volumes, logs, record')
    .argument('<manifest>', 'the manifest that was played'))
    .action(verb(async (ctx, [manifest], o) => (await verbs.kube()).down(ctx, manifest as string, o as never)));
  stateDirOption(kube.command('ps').description('list played pods with kubectl\'s columns')
    .option('-n, --namespace <namespace>', 'only pods of this namespace')
    .addOption(outputOption('table')))
    .action(async (o: Opts) => (await verbs.kube()).ps(o as never, outputOf(o)));
  stateDirOption(kube.command('supervise', { hidden: true }).description('(internal) supervise one played pod; started by "kube play"')
    .argument('<key>', 'namespace_name of the played pod'))
    .action(async (key: string, o: Opts) => (await verbs.kube()).supervise(key, o as never));

  // Options are positional (so exec passes its command's own flags through): the connection
  // options are accepted after the verb too, as in `crib ps --address ...`.
  const addConnectionOptions = (cmd: Command): void => {
    for (const c of cmd.commands) {
      if (c.commands.length > 0) addConnectionOptions(c);
      else if (c.name() !== 'daemon') {
        c.option('--address <address>', 'the daemon\'s socket (default: grpc.address of the config file)')
          .option('--config <file>', 'the config file to read the address from (default: /etc/crib/config.toml)')
          .option('--request-timeout <duration>', 'how long to wait for each answer of the daemon (default: "2m")');
      }
    }
  };
  addConnectionOptions(program);

  program.command('completion').description('print a shell completion script: source <(crib completion bash)')
    .argument('<shell>', 'bash or zsh')
    .action(async (shell: string) => {
      const { completionScript } = await import('./completion.js');
      print(completionScript(program, shell));
    });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end here too (exit code 0); commander already printed the message.
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    }
    const e = explain(err, lastAddress);
    process.stderr.write(`crib: ${e.message}\n`);
    process.exit(e.exitCode);
  }
  process.exit(process.exitCode ?? 0);
}
