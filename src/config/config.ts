// The daemon's configuration: a TOML file (default /etc/crib/config.toml) in which every key is
// optional. Defaults are embedded so crib runs with no file at all; an unknown key is an error
// that names it, because a misspelt key silently ignored is a node misconfigured in production.
import { readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { InvalidArgumentError, errnoCode } from '../errors.js';
import { parseByteSize } from './byte-size.js';
import { parseDurationMs } from './duration.js';
import { DEFAULT_CRI_LIMITS, DEFAULT_MAX_TOKENS, DEFAULT_MAX_TOKENS_PER_TARGET, GRPC_MAX_MESSAGE_BYTES } from './limit-defaults.js';

export const DEFAULT_CONFIG_PATH = '/etc/crib/config.toml';

// The schema is built on each call and dropped after it, not held in a module constant: zod
// binds some 25 methods to every schema node, and the config's nodes would stay on the heap for
// the daemon's whole life to serve one parse at its start (issue 14).
/** The config's schema, built afresh (src/config/config-docs.test.ts walks it). */
export function configSchema() {
  const duration = z
    .union([z.string(), z.number()])
    .transform((v, ctx) => {
      const ms = parseDurationMs(v);
      if (ms === undefined) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${v}" is not a duration like "30s", "5m" or a number of seconds` });
        return z.NEVER;
      }
      return ms;
    });

  const byteSize = z
    .union([z.string(), z.number()])
    .transform((v, ctx) => {
      const bytes = parseByteSize(v);
      if (bytes === undefined || bytes === 0) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${v}" is not a size like "64MiB", "16GiB" or a number of bytes` });
        return z.NEVER;
      }
      return bytes;
    });

  const registryAuth = z
    .object({
      username: z.string().optional(),
      password: z.string().optional(),
      auth: z.string().optional(),
      identity_token: z.string().optional(),
    })
    .strict();

  const registryHost = z
    .object({
      /** Endpoints ("http://127.0.0.1:5000", "https://mirror.example") tried in order. */
      mirrors: z.array(z.string().url()).default([]),
      /** Do not fall back to the registry itself when every mirror fails. */
      override_upstream: z.boolean().default(false),
      /** Plain http or unverified TLS for this registry. */
      insecure: z.boolean().default(false),
      auth: registryAuth.optional(),
    })
    .strict();

  const runtimeHandler = z
    .object({
      /** Path of an OCI runtime binary with runc's command line (crib-runtime, runc, crun). */
      path: z.string().min(1),
      /** The runtime's --root (its state dir); default STATE/runtime-NAME. */
      root: z.string().startsWith('/', { message: 'must be an absolute path' }).optional(),
    })
    .strict();

  const MiB = 1024 * 1024;
  const intIn = (min: number, max: number, dflt: number) => z.number().int().min(min).max(max).default(dflt);

  /**
   * Bounds on what CRI clients may make crib store and list; defaults are the Kubernetes API's (or
   * the kernel's) so nothing kubelet can send for a valid Pod is refused. Fixed bounds (paths,
   * names, DNS, ...) live in src/server/cri-limits.ts with the reason each is not configurable.
   */
  const limitsSection = z
    .object({
      max_annotation_bytes: intIn(1024, 8 * MiB, DEFAULT_CRI_LIMITS.maxAnnotationBytes),
      max_label_bytes: intIn(1024, 8 * MiB, DEFAULT_CRI_LIMITS.maxLabelBytes),
      max_env_bytes: intIn(4096, 8 * MiB, DEFAULT_CRI_LIMITS.maxEnvBytes),
      max_args_bytes: intIn(4096, 8 * MiB, DEFAULT_CRI_LIMITS.maxArgsBytes),
      max_mounts: intIn(1, 65536, DEFAULT_CRI_LIMITS.maxMounts),
      max_devices: intIn(1, 65536, DEFAULT_CRI_LIMITS.maxDevices),
      max_port_mappings: intIn(1, 131072, DEFAULT_CRI_LIMITS.maxPortMappings),
      /** Must leave room under the gRPC message limit for what the estimate does not count. */
      max_listed_bytes: intIn(64 * 1024, GRPC_MAX_MESSAGE_BYTES - MiB, DEFAULT_CRI_LIMITS.maxListedBytes),
      max_stream_tokens: intIn(1, 1 << 20, DEFAULT_MAX_TOKENS),
      max_stream_tokens_per_target: intIn(1, 1 << 20, DEFAULT_MAX_TOKENS_PER_TARGET),
    })
    .strict()
    .default({});

  return z
    .object({
      root: z.string().default('/var/lib/crib'),
      state: z.string().default('/run/crib'),
      log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
      grpc: z
        .object({
          address: z.string().default('unix:///run/crib/crib.sock'),
          socket_mode: z.string().regex(/^0?[0-7]{3}$/, 'an octal mode like "0660"').default('0660'),
          /** Group that may use the socket (name or gid); the socket stays root's otherwise. */
          socket_group: z.union([z.string(), z.number()]).optional(),
        })
        .strict()
        .default({}),
      image: z
        .object({
          max_concurrent_downloads: z.number().int().min(1).max(64).default(3),
          pull_progress_timeout: duration.default('5m'),
          /** A blob download must average at least this many bytes per second once
           * pull_min_rate_grace has passed (src/image/registry/throughput-floor.ts). */
          pull_min_rate: byteSize.pipe(z.number().max(1024 * MiB, 'must be at most 1GiB (per second)')).default('1KiB'),
          pull_min_rate_grace: duration
            .pipe(z.number().min(1000, 'must be at least 1s').max(24 * 3600_000, 'must be at most 24h'))
            .default('5m'),
          request_timeout: duration.default('30s'),
          retries: z.number().int().min(0).max(20).default(3),
          /** Image references never garbage-collected by kubelet (reported as pinned). */
          pinned_images: z.array(z.string()).default([]),
          /** Registry credentials in Docker's config.json / containers auth.json format ({"auths": ...});
           * credentials under [registry."host".auth] win over the file's. */
          auth_file: z.string().refine((p) => p.startsWith('/'), 'must be an absolute path').optional(),
          // Bounds on what a registry (or an imported archive) may make the daemon hold or write.
          // Each is sized well above real images; hitting one fails the pull with
          // RESOURCE_EXHAUSTED naming the key. Why each default: src/image/limits.ts.
          max_manifest_size: byteSize.default('4MiB'),
          max_index_manifests: z.number().int().min(1).default(1024),
          max_layers: z.number().int().min(1).default(128),
          max_config_size: byteSize.default('8MiB'),
          max_layer_size: byteSize.default('16GiB'),
          max_image_size: byteSize.default('64GiB'),
          max_layer_entries: z.number().int().min(1).default(1_000_000),
        })
        .strict()
        .default({}),
      /** Per registry host ("docker.io", "127.0.0.1:5000", or "*" for every host). */
      registry: z.record(registryHost).default({}),
      runtime: z
        .object({
          default_handler: z.string().default('crib'),
          /** What RuntimeConfig tells kubelet; crib writes cgroupfs paths either way and accepts
           * systemd-style cgroup parents ("slice:prefix:name") by translating them. */
          cgroup_driver: z.enum(['cgroupfs', 'systemd']).default('cgroupfs'),
          handlers: z.record(runtimeHandler).default({}),
        })
        .strict()
        .default({}),
      network: z
        .object({
          /** "builtin": crib's bridge network; "cni": the standard CNI plugins configured in cni_conf_dir. */
          plugin: z.enum(['builtin', 'cni']).default('builtin'),
          bridge: z.string().max(15).default('crib0'),
          pod_cidr: z.string().default('10.88.0.0/16'),
          /** An IPv6 pod CIDR (e.g. "fd88::/64") makes the built-in network dual-stack. */
          pod_cidr_v6: z.string().optional(),
          mtu: z.number().int().min(576).max(65535).default(1500),
          /** nftables table (family ip, and ip6 for dual stack) that holds crib's NAT and hostPort rules. */
          nft_table: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,30}$/, 'a table name like "crib"').default('crib'),
          cni_conf_dir: z.string().default('/etc/cni/net.d'),
          cni_bin_dirs: z.array(z.string()).default(['/opt/cni/bin', '/usr/lib/cni']),
        })
        .strict()
        .default({}),
      streaming: z
        .object({
          address: z.string().default('127.0.0.1'),
          port: z.number().int().min(0).max(65535).default(0),
          tls_cert: z.string().optional(),
          tls_key: z.string().optional(),
          /** A client that reads no output for this long is cut off and its exec'd process killed. */
          stall_timeout: duration.default('5m'),
        })
        .strict()
        .default({}),
      limits: limitsSection,
      cdi: z
        .object({
          /** CDI spec directories; a device in a later one overrides the same device in an earlier one. */
          spec_dirs: z.array(z.string().refine((d) => d.startsWith('/'), 'must be an absolute path')).max(16).default(['/etc/cdi', '/var/run/cdi']),
        })
        .strict()
        .default({}),
      metrics: z
        .object({
          /** host:port of the Prometheus endpoint (GET /metrics); unset, nothing is served. */
          address: z
            .string()
            .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'a host:port like "127.0.0.1:9464"')
            .refine((a) => Number(a.slice(a.lastIndexOf(':') + 1)) <= 65535, 'the port must be in 0..65535')
            .optional(),
        })
        .strict()
        .default({}),
    })
    .strict();
}

export type CribConfig = z.output<ReturnType<typeof configSchema>>;
export type RegistryHostConfig = CribConfig['registry'][string];

/** Validate an already parsed config object (from TOML or a test). */
export function configFromObject(raw: unknown, source = 'config'): CribConfig {
  const result = configSchema().safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.join('.') || '(top level)';
    const what =
      issue.code === z.ZodIssueCode.unrecognized_keys
        ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${[...issue.path, k].join('.')}"`).join(', ')}`
        : `${where}: ${issue.message}`;
    throw new InvalidArgumentError(`${source}: ${what}`);
  }
  return result.data;
}

/**
 * Load the config file. A missing file at the default path means "all defaults"; a missing file
 * that was asked for explicitly is an error.
 */
export async function loadConfig(path?: string): Promise<CribConfig> {
  const file = path ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' && path === undefined) return configFromObject({});
    throw new InvalidArgumentError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    throw new InvalidArgumentError(`config file ${file} is not valid TOML: ${(err as Error).message}`);
  }
  return configFromObject(raw, file);
}
