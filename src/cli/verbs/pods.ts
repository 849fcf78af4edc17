// Pod verbs: pods, inspectp, runp, stopp, rmp, statsp.
import { CliError } from '../cli-error.js';
import { readConfigFile } from '../config-file.js';
import type { Context } from '../context.js';
import { labelSelector, nameMatcher, podState } from '../filters.js';
import { ago, formatData, formatTable, humanBytes, type OutputFormat, parseVerboseInfo, print, shortId, stateName } from '../output.js';

interface CriPod {
  id: string;
  metadata: { name: string; namespace: string; uid: string; attempt: number };
  state: string;
  createdAt: string;
  labels: Record<string, string>;
  runtimeHandler: string;
}

export interface PodListOptions {
  name?: string;
  namespace?: string;
  label?: string[];
  state?: string;
  id?: string;
  quiet?: boolean;
  noTrunc?: boolean;
  latest?: boolean;
}

export async function listPods(ctx: Context, opts: PodListOptions, format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const filter: Record<string, unknown> = {};
  const state = podState(opts.state);
  if (state) filter.state = { state };
  const selector = labelSelector(opts.label);
  if (selector) filter.labelSelector = selector;
  if (opts.id) filter.id = await ctx.podId(opts.id);
  const nameOk = nameMatcher(opts.name);
  let items = ((await cri.runtime.ListPodSandbox({ filter }, ctx.call)) as { items: CriPod[] }).items
    .filter((p) => nameOk(p.metadata.name) && (opts.namespace === undefined || p.metadata.namespace === opts.namespace))
    .sort((a, b) => (BigInt(b.createdAt) > BigInt(a.createdAt) ? 1 : -1));
  if (opts.latest) items = items.slice(0, 1);
  if (opts.quiet) {
    print(items.map((p) => `${p.id}\n`).join(''));
    return;
  }
  if (format !== 'table') {
    print(formatData({ items }, format));
    return;
  }
  print(formatTable(['POD ID', 'CREATED', 'STATE', 'NAME', 'NAMESPACE', 'ATTEMPT', 'RUNTIME'], items.map((p) => [
    shortId(p.id, opts.noTrunc), ago(p.createdAt), stateName(p.state), p.metadata.name, p.metadata.namespace,
    String(p.metadata.attempt), p.runtimeHandler || '(default)',
  ])));
}

export async function inspectPods(ctx: Context, ids: string[], format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const out: { status: { id: string; state: string; metadata: CriPod['metadata']; network?: { ip?: string } }; info: unknown }[] = [];
  for (const text of ids) {
    const podSandboxId = await ctx.podId(text);
    const res = await cri.runtime.PodSandboxStatus({ podSandboxId, verbose: true }, ctx.call);
    out.push({ status: res.status, info: parseVerboseInfo(res.info) });
  }
  if (format === 'table') {
    print(formatTable(['POD ID', 'NAME', 'NAMESPACE', 'STATE', 'IP'], out.map((o) => [
      shortId(o.status.id), o.status.metadata.name, o.status.metadata.namespace, stateName(o.status.state), o.status.network?.ip ?? '',
    ])));
    return;
  }
  print(formatData(out.length === 1 ? out[0] : out, format));
}

export async function runPod(ctx: Context, configPath: string, opts: { runtime?: string }): Promise<string> {
  const config = await readConfigFile(configPath, 'pod sandbox config');
  const cri = await ctx.cri();
  const { podSandboxId } = await cri.runtime.RunPodSandbox({ config, runtimeHandler: opts.runtime ?? '' }, ctx.call);
  return podSandboxId as string;
}

async function podTargets(ctx: Context, ids: string[], all: boolean | undefined, verb: string): Promise<string[]> {
  if (all) {
    if (ids.length > 0) throw new CliError('give either pod ids or --all, not both.');
    const cri = await ctx.cri();
    return ((await cri.runtime.ListPodSandbox({}, ctx.call)) as { items: CriPod[] }).items.map((p) => p.id);
  }
  if (ids.length === 0) throw new CliError(`name the pods to ${verb} (see "crib pods"), or use --all.`);
  const out: string[] = [];
  for (const id of ids) out.push(await ctx.podId(id));
  return out;
}

export async function stopPods(ctx: Context, ids: string[], opts: { all?: boolean }): Promise<void> {
  const cri = await ctx.cri();
  for (const podSandboxId of await podTargets(ctx, ids, opts.all, 'stop')) {
    await cri.runtime.StopPodSandbox({ podSandboxId }, ctx.call);
    print(`Stopped sandbox ${podSandboxId}\n`);
  }
}

export async function removePods(ctx: Context, ids: string[], opts: { all?: boolean; force?: boolean }): Promise<void> {
  const cri = await ctx.cri();
  for (const podSandboxId of await podTargets(ctx, ids, opts.all, 'remove')) {
    const { status } = await cri.runtime.PodSandboxStatus({ podSandboxId }, ctx.call);
    if (status?.state === 'SANDBOX_READY') {
      if (!opts.force) throw new CliError(`pod ${podSandboxId.slice(0, 13)} is still running: stop it first with "crib stopp ${podSandboxId.slice(0, 13)}", or use --force.`);
      await cri.runtime.StopPodSandbox({ podSandboxId }, ctx.call);
    }
    await cri.runtime.RemovePodSandbox({ podSandboxId }, ctx.call);
    print(`Removed sandbox ${podSandboxId}\n`);
  }
}

interface PodStats {
  attributes: { id: string; metadata: CriPod['metadata'] };
  linux?: { cpu?: { usageNanoCores?: { value: string } | null }; memory?: { workingSetBytes?: { value: string } | null } };
}

export async function podStats(ctx: Context, opts: { id?: string; label?: string[] }, format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const filter: Record<string, unknown> = {};
  if (opts.id) filter.id = await ctx.podId(opts.id);
  const selector = labelSelector(opts.label);
  if (selector) filter.labelSelector = selector;
  let { stats } = (await cri.runtime.ListPodSandboxStats({ filter }, ctx.call)) as { stats: PodStats[] };
  // CPU use is a rate: the daemon computes it between two calls, so the first one may have none.
  if (stats.some((s) => !s.linux?.cpu?.usageNanoCores)) {
    await new Promise((r) => setTimeout(r, 1000));
    ({ stats } = (await cri.runtime.ListPodSandboxStats({ filter }, ctx.call)) as { stats: PodStats[] });
  }
  if (format !== 'table') {
    print(formatData({ stats }, format));
    return;
  }
  print(formatTable(['POD', 'POD ID', 'CPU %', 'MEM'], stats.map((s) => [
    s.attributes.metadata.name, shortId(s.attributes.id),
    (Number(s.linux?.cpu?.usageNanoCores?.value ?? 0) / 1e7).toFixed(2), humanBytes(s.linux?.memory?.workingSetBytes?.value ?? 0),
  ])));
}
