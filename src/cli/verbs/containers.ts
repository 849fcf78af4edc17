// Container verbs: ps, inspect, create, run, start, stop, rm, stats.
import { CliError } from '../cli-error.js';
import { readConfigFile } from '../config-file.js';
import type { Context } from '../context.js';
import { containerState, labelSelector, nameMatcher } from '../filters.js';
import { ago, formatData, formatTable, humanBytes, type OutputFormat, parseVerboseInfo, print, shortId, stateName } from '../output.js';
import { runPod } from './pods.js';

interface CriContainer {
  id: string;
  podSandboxId: string;
  metadata: { name: string; attempt: number };
  image: { image: string };
  imageRef: string;
  state: string;
  createdAt: string;
  labels: Record<string, string>;
}

export interface PsOptions {
  all?: boolean;
  name?: string;
  label?: string[];
  state?: string;
  pod?: string;
  id?: string;
  image?: string;
  quiet?: boolean;
  noTrunc?: boolean;
  latest?: boolean;
}

export async function listContainers(ctx: Context, opts: PsOptions, format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const filter: Record<string, unknown> = {};
  // As crictl: only running containers unless -a or a --state asks for others.
  const state = containerState(opts.state) ?? (opts.all ? undefined : 'CONTAINER_RUNNING');
  if (state) filter.state = { state };
  const selector = labelSelector(opts.label);
  if (selector) filter.labelSelector = selector;
  if (opts.pod) filter.podSandboxId = await ctx.podId(opts.pod);
  if (opts.id) filter.id = await ctx.containerId(opts.id);
  const nameOk = nameMatcher(opts.name);
  let containers = ((await cri.runtime.ListContainers({ filter }, ctx.call)) as { containers: CriContainer[] }).containers
    .filter((c) => nameOk(c.metadata.name) && (opts.image === undefined || c.image.image === opts.image || c.imageRef.startsWith(opts.image)))
    .sort((a, b) => (BigInt(b.createdAt) > BigInt(a.createdAt) ? 1 : -1));
  if (opts.latest) containers = containers.slice(0, 1);
  if (opts.quiet) {
    print(containers.map((c) => `${c.id}\n`).join(''));
    return;
  }
  if (format !== 'table') {
    print(formatData({ containers }, format));
    return;
  }
  const podNames = new Map<string, string>();
  if (containers.length > 0) {
    for (const p of (await cri.runtime.ListPodSandbox({}, ctx.call)).items as { id: string; metadata: { name: string } }[]) podNames.set(p.id, p.metadata.name);
  }
  print(formatTable(['CONTAINER', 'IMAGE', 'CREATED', 'STATE', 'NAME', 'ATTEMPT', 'POD ID', 'POD'], containers.map((c) => [
    shortId(c.id, opts.noTrunc), c.image.image.startsWith('sha256:') ? shortId(c.image.image, opts.noTrunc) : c.image.image,
    ago(c.createdAt), stateName(c.state), c.metadata.name, String(c.metadata.attempt), shortId(c.podSandboxId, opts.noTrunc),
    podNames.get(c.podSandboxId) ?? '',
  ])));
}

export async function inspectContainers(ctx: Context, ids: string[], format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const out: { status: { id: string; state: string; metadata: { name: string }; exitCode: number; image: { image: string } }; info: unknown }[] = [];
  for (const text of ids) {
    const containerId = await ctx.containerId(text);
    const res = await cri.runtime.ContainerStatus({ containerId, verbose: true }, ctx.call);
    out.push({ status: res.status, info: parseVerboseInfo(res.info) });
  }
  if (format === 'table') {
    print(formatTable(['CONTAINER', 'NAME', 'STATE', 'EXIT CODE', 'IMAGE'], out.map((o) => [
      shortId(o.status.id), o.status.metadata.name, stateName(o.status.state), String(o.status.exitCode), o.status.image.image,
    ])));
    return;
  }
  print(formatData(out.length === 1 ? out[0] : out, format));
}

/** Pull the container's image unless the node has it (crictl create/run do the same). */
async function ensureImage(ctx: Context, config: Record<string, unknown>): Promise<void> {
  const image = (config.image as { image?: string } | undefined)?.image;
  if (!image) throw new CliError('the container config names no image (image.image).');
  const cri = await ctx.cri();
  const { image: have } = await cri.image.ImageStatus({ image: { image } }, ctx.call);
  if (!have) await cri.image.PullImage({ image: { image } }, { deadline: Date.now() + Math.max(ctx.timeoutMs, 10 * 60_000) });
}

export async function createContainer(ctx: Context, pod: string, containerPath: string, podPath: string, opts: { noPull?: boolean }): Promise<string> {
  const podSandboxId = await ctx.podId(pod);
  const config = await readConfigFile(containerPath, 'container config');
  const sandboxConfig = await readConfigFile(podPath, 'pod sandbox config');
  if (!opts.noPull) await ensureImage(ctx, config);
  const cri = await ctx.cri();
  const { containerId } = await cri.runtime.CreateContainer({ podSandboxId, config, sandboxConfig }, ctx.call);
  return containerId as string;
}

/** runp + create + start: a pod with one running container, from two config files. */
export async function runContainer(ctx: Context, containerPath: string, podPath: string, opts: { runtime?: string; noPull?: boolean }): Promise<string> {
  const config = await readConfigFile(containerPath, 'container config');
  if (!opts.noPull) await ensureImage(ctx, config);
  const podSandboxId = await runPod(ctx, podPath, opts);
  const cri = await ctx.cri();
  const sandboxConfig = await readConfigFile(podPath, 'pod sandbox config');
  const { containerId } = await cri.runtime.CreateContainer({ podSandboxId, config, sandboxConfig }, ctx.call);
  await cri.runtime.StartContainer({ containerId }, ctx.call);
  return containerId as string;
}

async function containerTargets(ctx: Context, ids: string[], all: boolean | undefined, verb: string): Promise<string[]> {
  if (all) {
    if (ids.length > 0) throw new CliError('give either container ids or --all, not both.');
    const cri = await ctx.cri();
    return ((await cri.runtime.ListContainers({}, ctx.call)) as { containers: CriContainer[] }).containers.map((c) => c.id);
  }
  if (ids.length === 0) throw new CliError(`name the containers to ${verb} (see "crib ps -a"), or use --all.`);
  const out: string[] = [];
  for (const id of ids) out.push(await ctx.containerId(id));
  return out;
}

export async function startContainers(ctx: Context, ids: string[]): Promise<void> {
  const cri = await ctx.cri();
  for (const containerId of await containerTargets(ctx, ids, false, 'start')) {
    await cri.runtime.StartContainer({ containerId }, ctx.call);
    print(`${containerId}\n`);
  }
}

export async function stopContainers(ctx: Context, ids: string[], opts: { timeout?: string; all?: boolean }): Promise<void> {
  const timeout = Number(opts.timeout ?? 0);
  if (!Number.isInteger(timeout) || timeout < 0) throw new CliError(`--timeout "${opts.timeout}" must be a whole number of seconds.`);
  const cri = await ctx.cri();
  for (const containerId of await containerTargets(ctx, ids, opts.all, 'stop')) {
    await cri.runtime.StopContainer({ containerId, timeout: String(timeout) }, { deadline: Date.now() + ctx.timeoutMs + timeout * 1000 });
    print(`${containerId}\n`);
  }
}

export async function removeContainers(ctx: Context, ids: string[], opts: { force?: boolean; all?: boolean }): Promise<void> {
  const cri = await ctx.cri();
  for (const containerId of await containerTargets(ctx, ids, opts.all, 'remove')) {
    const { status } = await cri.runtime.ContainerStatus({ containerId }, ctx.call);
    if (status?.state === 'CONTAINER_RUNNING') {
      if (!opts.force) throw new CliError(`container ${containerId.slice(0, 13)} is running: stop it first with "crib stop ${containerId.slice(0, 13)}", or use --force.`);
      await cri.runtime.StopContainer({ containerId, timeout: '0' }, ctx.call);
    }
    await cri.runtime.RemoveContainer({ containerId }, ctx.call);
    print(`${containerId}\n`);
  }
}

interface ContainerStats {
  attributes: { id: string; metadata: { name: string } };
  cpu?: { usageNanoCores?: { value: string } | null };
  memory?: { workingSetBytes?: { value: string } | null };
  writableLayer?: { usedBytes?: { value: string } | null; inodesUsed?: { value: string } | null };
}

export async function containerStats(ctx: Context, ids: string[], opts: { pod?: string; label?: string[]; all?: boolean }, format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const filter: Record<string, unknown> = {};
  if (opts.pod) filter.podSandboxId = await ctx.podId(opts.pod);
  const selector = labelSelector(opts.label);
  if (selector) filter.labelSelector = selector;
  const wanted = new Set<string>();
  for (const id of ids) wanted.add(await ctx.containerId(id));
  const fetch = async () => ((await cri.runtime.ListContainerStats({ filter }, ctx.call)) as { stats: ContainerStats[] }).stats
    .filter((s) => wanted.size === 0 || wanted.has(s.attributes.id));
  let stats = await fetch();
  // CPU use is a rate the daemon computes between two calls: the first may have none.
  if (stats.some((s) => !s.cpu?.usageNanoCores)) {
    await new Promise((r) => setTimeout(r, 1000));
    stats = await fetch();
  }
  if (format !== 'table') {
    print(formatData({ stats }, format));
    return;
  }
  print(formatTable(['CONTAINER', 'NAME', 'CPU %', 'MEM', 'DISK', 'INODES'], stats.map((s) => [
    shortId(s.attributes.id), s.attributes.metadata.name, (Number(s.cpu?.usageNanoCores?.value ?? 0) / 1e7).toFixed(2),
    humanBytes(s.memory?.workingSetBytes?.value ?? 0), humanBytes(s.writableLayer?.usedBytes?.value ?? 0),
    String(s.writableLayer?.inodesUsed?.value ?? 0),
  ])));
}
