// One run of a liveness, readiness or startup probe, as kubelet's prober does it: exec through the
// runtime's ExecSync (exit code 0 passes), an HTTP GET to the pod IP (status 200-399 passes) or a
// TCP connect to the pod IP. The `crib` process runs on the host, and crib's bridge routes pod IPs
// from the host, so the HTTP and TCP probes reach the pod the way kubelet's do.
import { request } from 'node:http';
import { connect } from 'node:net';
import type { V1Probe } from '@kubernetes/client-node/dist/gen/models/V1Probe.js';
import type { CriClient } from '../client/cri-client.js';

export interface ProbeTarget {
  cri: CriClient;
  containerId: string;
  podIp: string;
  /** The container's named ports, for probes that name one. */
  ports: { name?: string; containerPort: number }[];
}

export interface ProbeResult {
  ok: boolean;
  message: string;
}

/** kubelet's defaults for a probe's timing and thresholds. */
export function probeTiming(p: V1Probe): { initialDelayMs: number; periodMs: number; timeoutMs: number; successThreshold: number; failureThreshold: number } {
  return {
    initialDelayMs: (p.initialDelaySeconds ?? 0) * 1000,
    periodMs: (p.periodSeconds ?? 10) * 1000,
    timeoutMs: (p.timeoutSeconds ?? 1) * 1000,
    successThreshold: p.successThreshold ?? 1,
    failureThreshold: p.failureThreshold ?? 3,
  };
}

function resolvePort(port: number | string | undefined, ports: ProbeTarget['ports']): number {
  if (typeof port === 'number') return port;
  if (port !== undefined && /^\d+$/.test(port)) return Number(port);
  const named = ports.find((p) => p.name === port);
  if (!named) throw new Error(`port "${String(port)}" names no port of the container`);
  return named.containerPort;
}

const MAX_OUTPUT = 10 * 1024;

export async function runProbe(p: V1Probe, t: ProbeTarget): Promise<ProbeResult> {
  const { timeoutMs } = probeTiming(p);
  try {
    if (p.exec) {
      const res = await t.cri.runtime.ExecSync({ containerId: t.containerId, cmd: p.exec.command ?? [], timeout: Math.ceil(timeoutMs / 1000) }, { deadline: Date.now() + timeoutMs + 10_000 });
      const out = Buffer.concat([Buffer.from(res.stdout ?? ''), Buffer.from(res.stderr ?? '')]).subarray(0, MAX_OUTPUT).toString('utf8').trim();
      return res.exitCode === 0 ? { ok: true, message: out } : { ok: false, message: `exec ${JSON.stringify(p.exec.command)} exited with ${res.exitCode}${out ? `: ${out}` : ''}` };
    }
    if (p.httpGet) {
      const g = p.httpGet;
      const port = resolvePort(g.port as never, t.ports);
      const host = g.host ?? t.podIp;
      const headers = Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value]));
      return await new Promise<ProbeResult>((resolve) => {
        const req = request({ host, port, path: g.path ?? '/', method: 'GET', headers: { 'User-Agent': 'kube-probe/crib', ...headers }, timeout: timeoutMs }, (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 400 ? { ok: true, message: `HTTP ${code}` } : { ok: false, message: `HTTP probe to ${host}:${port}${g.path ?? '/'} failed with status ${code}` });
        });
        req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
        req.on('error', (err) => resolve({ ok: false, message: `HTTP probe to ${host}:${port}${g.path ?? '/'} failed: ${err.message}` }));
        req.end();
      });
    }
    if (p.tcpSocket) {
      const port = resolvePort(p.tcpSocket.port as never, t.ports);
      const host = p.tcpSocket.host ?? t.podIp;
      return await new Promise<ProbeResult>((resolve) => {
        const sock = connect({ host, port, timeout: timeoutMs });
        sock.once('connect', () => {
          sock.destroy();
          resolve({ ok: true, message: 'connected' });
        });
        sock.once('timeout', () => sock.destroy(new Error(`timed out after ${timeoutMs} ms`)));
        sock.once('error', (err) => resolve({ ok: false, message: `TCP probe to ${host}:${port} failed: ${err.message}` }));
      });
    }
    return { ok: false, message: 'the probe has no handler' };
  } catch (err) {
    return { ok: false, message: `probe failed: ${(err as { details?: string }).details ?? (err as Error).message}` };
  }
}
