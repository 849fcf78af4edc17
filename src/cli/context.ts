// What every client verb needs: the daemon's address (--address, else the config file's
// grpc.address), a CRI client on it, and the resolution of short ids and names to full ids.
import type { CriClient } from '../client/cri-client.js';
import { CliError, UsageError } from './cli-error.js';
import { parseOutputFormat, type OutputFormat } from './output.js';

export interface GlobalOptions {
  address?: string;
  config?: string;
  requestTimeout?: string;
}

/** A verb's view of the daemon. Opened lazily: `crib completion` never needs one. */
export class Context {
  private client: CriClient | undefined;

  private constructor(readonly address: string, readonly timeoutMs: number) {}

  static async open(opts: GlobalOptions): Promise<Context> {
    const timeoutMs = parseTimeout(opts.requestTimeout);
    if (opts.address) return new Context(opts.address, timeoutMs);
    const { loadConfig } = await import('../config/config.js');
    const config = await loadConfig(opts.config).catch((err: unknown) => {
      throw new CliError(`${(err as Error).message}. Fix the file, or give the daemon's socket with --address.`);
    });
    return new Context(config.grpc.address, timeoutMs);
  }

  async cri(): Promise<CriClient> {
    if (!this.client) {
      const { criClient, KUBELET_CHANNEL_OPTIONS } = await import('../client/cri-client.js');
      this.client = criClient(this.address, KUBELET_CHANNEL_OPTIONS);
    }
    return this.client;
  }

  /** Call options with this command's deadline. */
  get call(): { deadline: number } {
    return { deadline: Date.now() + this.timeoutMs };
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  /** A container id from a full id, a unique id prefix, or a unique container name. */
  async containerId(text: string): Promise<string> {
    const cri = await this.cri();
    const { containers } = await cri.runtime.ListContainers({}, this.call);
    return pickOne('container', text, (containers as { id: string; metadata?: { name?: string } }[]).map((c) => ({ id: c.id, name: c.metadata?.name ?? '' })), 'crib ps -a');
  }

  /** A pod sandbox id from a full id, a unique id prefix, or a unique pod name. */
  async podId(text: string): Promise<string> {
    const cri = await this.cri();
    const { items } = await cri.runtime.ListPodSandbox({}, this.call);
    return pickOne('pod', text, (items as { id: string; metadata?: { name?: string } }[]).map((p) => ({ id: p.id, name: p.metadata?.name ?? '' })), 'crib pods');
  }
}

/** --timeout: seconds or a duration like "30s", "2m"; default 2 minutes (pulls take their own). */
function parseTimeout(text: string | undefined): number {
  if (text === undefined) return 120_000;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--request-timeout "${text}" is not a duration like "30s", "2m" or a number of seconds.`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * mult;
}

export function pickOne(kind: string, text: string, candidates: { id: string; name: string }[], listHint: string): string {
  if (text === '') throw new UsageError(`a ${kind} id or name is required.`);
  const exact = candidates.find((c) => c.id === text);
  if (exact) return exact.id;
  const byPrefix = candidates.filter((c) => c.id.startsWith(text));
  if (byPrefix.length === 1) return byPrefix[0]!.id;
  if (byPrefix.length > 1) {
    throw new CliError(`"${text}" is the start of ${byPrefix.length} ${kind} ids (${byPrefix.slice(0, 5).map((c) => c.id.slice(0, 13)).join(', ')}): give more of the id.`);
  }
  const byName = candidates.filter((c) => c.name === text);
  if (byName.length === 1) return byName[0]!.id;
  if (byName.length > 1) {
    throw new CliError(`${byName.length} ${kind}s are named "${text}": give the id instead (see "${listHint}").`);
  }
  throw new CliError(`no ${kind} has the id or name "${text}": see "${listHint}" for the ones there are.`);
}

export function outputOf(opts: { output?: string }, dflt: OutputFormat = 'table'): OutputFormat {
  return parseOutputFormat(opts.output, dflt);
}
