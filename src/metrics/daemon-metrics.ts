// The daemon's Prometheus metrics (prom-client), in a registry of their own. Counters and
// histograms are fed as things happen (every RPC through implementService's observer, every pull
// when it ends); gauges of pods, containers and monitors are read from the services on each
// scrape, so they can never drift from what the daemon holds. Labels are bounded: method names
// come from the service definitions, codes from gRPC's status enum, states from the CRI's.
import { Status as grpcStatus } from '../grpc-status.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PullProgress } from '../image/pull-progress.js';

export interface MetricsSources {
  /** CRI states of the pods there are (SANDBOX_READY, SANDBOX_NOTREADY). */
  podStates(): string[];
  /** CRI states of the containers there are (CONTAINER_RUNNING, ...). */
  containerStates(): string[];
  /** Monitors the daemon is connected to. */
  monitorsAlive(): number;
  /** Subscribe to pulls ending; returns an unsubscribe. */
  onPullFinished(listener: (p: PullProgress, err: unknown) => void): () => void;
}

const RPC_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const PULL_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
const POD_STATES = ['SANDBOX_READY', 'SANDBOX_NOTREADY'];
const CONTAINER_STATES = ['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_EXITED', 'CONTAINER_UNKNOWN'];

/** CONTAINER_RUNNING -> running: the label values people write in queries. */
const stateLabel = (s: string): string => s.replace(/^(CONTAINER_|SANDBOX_)/, '').toLowerCase();

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly rpcSeconds: Histogram<'method'>;
  private readonly rpcErrors: Counter<'method' | 'code'>;
  private readonly recovered: Gauge<'kind'>;
  private readonly unsubscribe: () => void;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    // Process memory, CPU, file descriptors, event-loop lag, heap and GC: prom-client's defaults.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    this.rpcSeconds = new Histogram({
      name: 'crib_rpc_duration_seconds',
      help: 'Time to answer each gRPC call (CRI and crib admin), by full method name.',
      labelNames: ['method'],
      buckets: RPC_BUCKETS,
      registers,
    });
    this.rpcErrors = new Counter({
      name: 'crib_rpc_errors_total',
      help: 'gRPC calls that failed, by method and gRPC status code.',
      labelNames: ['method', 'code'],
      registers,
    });
    const pullBytes = new Counter({ name: 'crib_image_pull_bytes_total', help: 'Layer bytes downloaded by image pulls.', registers });
    const pullSeconds = new Histogram({
      name: 'crib_image_pull_duration_seconds',
      help: 'Duration of image pulls, by result (success, failure).',
      labelNames: ['result'],
      buckets: PULL_BUCKETS,
      registers,
    });
    const pullFailures = new Counter({ name: 'crib_image_pull_failures_total', help: 'Image pulls that failed.', registers });
    new Gauge({
      name: 'crib_pods',
      help: 'Pod sandboxes, by state (ready, notready).',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = countBy(sources.podStates(), POD_STATES);
        for (const [s, n] of counts) this.set({ state: stateLabel(s) }, n);
      },
    });
    new Gauge({
      name: 'crib_containers',
      help: 'Containers, by state (created, running, exited, unknown).',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = countBy(sources.containerStates(), CONTAINER_STATES);
        for (const [s, n] of counts) this.set({ state: stateLabel(s) }, n);
      },
    });
    new Gauge({
      name: 'crib_monitors_alive',
      help: 'Container monitors (crib-monitor) the daemon is connected to.',
      registers,
      collect() {
        this.set(sources.monitorsAlive());
      },
    });
    this.recovered = new Gauge({
      name: 'crib_recovered',
      help: 'Pods and containers taken over from disk when this daemon started (kind: pod, container).',
      labelNames: ['kind'],
      registers,
    });
    this.recovered.set({ kind: 'pod' }, 0);
    this.recovered.set({ kind: 'container' }, 0);
    this.unsubscribe = sources.onPullFinished((p, err) => {
      pullBytes.inc(p.receivedBytes);
      pullSeconds.observe({ result: err === undefined ? 'success' : 'failure' }, (Date.now() - p.startedAt) / 1000);
      if (err !== undefined) pullFailures.inc();
    });
  }

  /** implementService's observer. */
  readonly observeRpc = (method: string, code: grpcStatus, seconds: number): void => {
    this.rpcSeconds.observe({ method }, seconds);
    if (code !== grpcStatus.OK) this.rpcErrors.inc({ method, code: grpcStatus[code] ?? String(code) });
  };

  /** What start-up recovery found on disk and took over. */
  setRecovered(pods: number, containers: number): void {
    this.recovered.set({ kind: 'pod' }, pods);
    this.recovered.set({ kind: 'container' }, containers);
  }

  close(): void {
    this.unsubscribe();
    this.registry.clear();
  }
}

/** Counts per known state (zeros included, so a series never vanishes), plus any other seen. */
function countBy(states: string[], known: string[]): Map<string, number> {
  const counts = new Map<string, number>(known.map((s) => [s, 0]));
  for (const s of states) counts.set(s, (counts.get(s) ?? 0) + 1);
  return counts;
}
