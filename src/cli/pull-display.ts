// How `crib pull` shows a pull: on a terminal, a live bar per layer and one for the whole image
// with bytes and speed (cli-progress); elsewhere (a pipe, a log file) one plain line each time a
// layer changes state, so logs stay readable and carry no escape sequences.
import cliProgress from 'cli-progress';
import type { StreamPullResponse } from '../server/admin-service.js';
import { humanBytes } from './output.js';

export interface PullDisplay {
  update(p: StreamPullResponse): void;
  /** The pull is over (done or failed): stop drawing. */
  stop(): void;
}

const layerName = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

function speed(bytes: number, ms: number): string {
  return ms <= 0 ? '-' : `${humanBytes(Math.round((bytes * 1000) / ms))}/s`;
}

const totals = (p: StreamPullResponse) => ({
  received: p.layers.reduce((n, l) => n + l.received, 0),
  size: p.layers.reduce((n, l) => n + l.size, 0),
});

export function terminalDisplay(stream: NodeJS.WriteStream): PullDisplay {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
      barsize: 30,
      format: '{name} |{bar}| {done}/{all} {state}',
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  let overall: cliProgress.SingleBar | undefined;
  return {
    update(p) {
      for (const l of p.layers) {
        const payload = { name: layerName(l.digest), done: humanBytes(l.received), all: humanBytes(l.size), state: l.state };
        const value = l.state === 'present' || l.state === 'done' ? l.size : l.received;
        const bar = bars.get(l.digest);
        if (bar) bar.update(value, payload);
        else bars.set(l.digest, multi.create(Math.max(l.size, 1), value, payload));
      }
      const { received, size } = totals(p);
      const payload = { name: 'total       ', done: humanBytes(received), all: humanBytes(size), state: speed(received, p.elapsedMs) };
      const value = p.phase === 'done' ? size : received;
      if (overall) overall.update(value, payload);
      else if (p.layers.length > 0) overall = multi.create(Math.max(size, 1), value, payload);
    },
    stop() {
      multi.stop();
    },
  };
}

export function plainDisplay(write: (line: string) => void): PullDisplay {
  const seen = new Map<string, string>();
  let resolved = false;
  return {
    update(p) {
      if (!resolved && p.phase !== 'resolving') {
        resolved = true;
        const { size } = totals(p);
        write(`pulling ${p.image}: ${p.layers.length} layers, ${humanBytes(size)}`);
      }
      for (const l of p.layers) {
        if (seen.get(l.digest) === l.state || l.state === 'waiting') continue;
        seen.set(l.digest, l.state);
        const what = l.state === 'present' ? 'already present' : l.state === 'downloading' ? `downloading ${humanBytes(l.size)}` : l.state;
        write(`layer ${layerName(l.digest)}: ${what}`);
      }
    },
    stop() {},
  };
}

/** The line printed when a pull ends, TTY or not. */
export function pullSummary(last: StreamPullResponse | undefined, imageRef: string): string {
  if (!last) return `Image is up to date for ${imageRef}`;
  const { received } = totals(last);
  return `Image is up to date for ${imageRef} (${humanBytes(received)} downloaded in ${(last.elapsedMs / 1000).toFixed(1)}s, ${speed(received, last.elapsedMs)})`;
}
