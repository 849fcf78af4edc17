// `crib kube play|down|ps|supervise`: the command-line side of src/kube/ (options, output).
import { CliError, UsageError } from '../cli-error.js';
import type { Context } from '../context.js';
import { formatData, formatTable, type OutputFormat, print } from '../output.js';

export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag} "${text}" is not a duration like "500ms", "30s", "5m" or a number of seconds.`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

export interface PlayCliOptions {
  configmap?: string[];
  secret?: string[];
  wait?: boolean;
  timeout: string;
  stateDir: string;
  podLogDir: string;
  resolvConf: string;
  backoffBase: string;
  backoffMax: string;
}

export async function play(ctx: Context, manifest: string, o: PlayCliOptions): Promise<void> {
  const { play: run } = await import('../../kube/play.js');
  const backoffBaseMs = parseDuration(o.backoffBase, '--backoff-base');
  const backoffMaxMs = parseDuration(o.backoffMax, '--backoff-max');
  if (backoffBaseMs < 100 || backoffMaxMs < backoffBaseMs) throw new UsageError('--backoff-base must be at least 100ms and --backoff-max at least --backoff-base.');
  const cliPath = process.argv[1];
  if (!cliPath) throw new CliError('cannot tell where the crib command is, to start the pod supervisor');
  await run(await ctx.cri(), {
    manifest, stateDir: o.stateDir, address: ctx.address, cliPath, configMaps: o.configmap ?? [], secrets: o.secret ?? [],
    logRoot: o.podLogDir, resolvConf: o.resolvConf, backoffBaseMs, backoffMaxMs, wait: o.wait === true, timeoutMs: parseDuration(o.timeout, '--timeout'),
  }, (line) => print(`${line}\n`));
}

export async function down(ctx: Context, manifest: string, o: { stateDir: string }): Promise<void> {
  const { down: run } = await import('../../kube/play.js');
  await run(await ctx.cri(), { manifest, stateDir: o.stateDir }, (line) => print(`${line}\n`));
}

export async function ps(o: { stateDir: string; namespace?: string }, format: OutputFormat): Promise<void> {
  const { listPlayed } = await import('../../kube/play.js');
  const pods = (await listPlayed(o.stateDir)).filter((p) => o.namespace === undefined || p.row.namespace === o.namespace);
  if (format !== 'table') {
    print(formatData({ items: pods.map((p) => ({ ...p.row, supervisorPid: p.supervisorPid ?? null, pod: p.record })) }, format));
    return;
  }
  print(formatTable(['NAMESPACE', 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'], pods.map(({ row }) => [
    row.namespace, row.name, row.ready, row.status, String(row.restarts), row.age,
  ])));
}

export async function supervise(key: string, o: { stateDir: string }): Promise<void> {
  const { KubeStateStore } = await import('../../kube/state-store.js');
  const rec = await new KubeStateStore(o.stateDir).read(key);
  if (!rec) throw new CliError(`no played pod "${key}" in ${o.stateDir}`);
  const { criClient, KUBELET_CHANNEL_OPTIONS } = await import('../../client/cri-client.js');
  const { supervise: run } = await import('../../kube/play.js');
  await run(criClient(rec.options.address, KUBELET_CHANNEL_OPTIONS), o.stateDir, key);
}
