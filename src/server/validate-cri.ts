// The one place CRI input is checked against crib's limits before anything is created, stored or
// run: RunPodSandbox, CreateContainer, Update*Resources, Exec/ExecSync/PortForward and the image
// calls all go through a CriValidator. Each refusal is an INVALID_ARGUMENT that names the RPC,
// the field path ("config.envs[3].key") and the rule or limit (with its config key when it has
// one), and quotes at most a short, truncated piece of the offending value.
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import type { DNSConfig__Output } from '../gen/runtime/v1/DNSConfig.js';
import type { ImageSpec__Output } from '../gen/runtime/v1/ImageSpec.js';
import type { LinuxContainerResources__Output } from '../gen/runtime/v1/LinuxContainerResources.js';
import type { LinuxContainerSecurityContext__Output } from '../gen/runtime/v1/LinuxContainerSecurityContext.js';
import type { LinuxSandboxSecurityContext__Output } from '../gen/runtime/v1/LinuxSandboxSecurityContext.js';
import type { PodSandboxConfig__Output } from '../gen/runtime/v1/PodSandboxConfig.js';
import type { PortMapping__Output } from '../gen/runtime/v1/PortMapping.js';
import { truncateText } from '../truncate.js';
import { FIXED_LIMITS as F, LIMIT_KEYS, type CriLimits } from './cri-limits.js';
import {
  hostnameProblem, labelValueProblem, nameProblem, namespaceProblem, qualifiedNameProblem,
  sysctlNameProblem, uidProblem,
} from './k8s-names.js';

/** How much of an offending value an error message quotes. */
const QUOTE_BYTES = 128;
/** A Windows section is kept (and ignored: crib runs Linux containers) if it is this small. */
const WINDOWS_SECTION_BYTES = 64 * 1024;
const PORT_PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);

const quote = (value: string): string => JSON.stringify(truncateText(value, QUOTE_BYTES));

/** Where a bound comes from, for the message: a config key or the standard that sets it. */
type Source = string;

class Check {
  constructor(private readonly rpc: string) {}

  fail(path: string, problem: string): never {
    throw new InvalidArgumentError(`${this.rpc}: ${path} ${problem}`);
  }

  atMost(path: string, size: number, max: number, unit: string, source: Source): void {
    if (size > max) this.fail(path, `is ${size} ${unit}, more than the limit of ${max} (${source})`);
  }

  /** A string no longer than `max` bytes and without NUL (every such field is a name or path). */
  text(path: string, value: string, max: number, source: Source): void {
    this.atMost(path, Buffer.byteLength(value), max, 'bytes', source);
    if (value.includes('\0')) this.fail(path, 'contains a NUL byte');
  }

  /** A path: at most PATH_MAX bytes, no NUL. */
  path(path: string, value: string): void {
    this.text(path, value, F.pathBytes, 'PATH_MAX');
  }

  count(path: string, items: readonly unknown[], max: number, source: Source): void {
    if (items.length > max) this.fail(path, `has ${items.length} entries, more than the limit of ${max} (${source})`);
  }

  rule(path: string, value: string, problem: string | undefined): void {
    if (problem !== undefined) this.fail(path, `${quote(value)} ${problem}`);
  }
}

/** Keys and values of a map summed, the way the API server sizes annotations. */
function mapBytes(map: Record<string, string>): number {
  let n = 0;
  for (const [k, v] of Object.entries(map)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

export class CriValidator {
  constructor(readonly limits: CriLimits) {}

  // ---- pods -------------------------------------------------------------------------------------

  podSandboxConfig(rpc: string, config: PodSandboxConfig__Output | null | undefined): asserts config is PodSandboxConfig__Output {
    const c: Check = new Check(rpc);
    const m = config?.metadata;
    if (!config || !m) c.fail('config.metadata', 'is required');
    c.rule('config.metadata.name', m.name, nameProblem(m.name));
    c.rule('config.metadata.namespace', m.namespace, namespaceProblem(m.namespace));
    c.rule('config.metadata.uid', m.uid, uidProblem(m.uid));
    if (config.hostname) c.rule('config.hostname', config.hostname, hostnameProblem(config.hostname));
    if (config.logDirectory) this.absolutePath(c, 'config.logDirectory', config.logDirectory);
    if (config.dnsConfig) this.dns(c, 'config.dnsConfig', config.dnsConfig);
    this.portMappings(c, 'config.portMappings', config.portMappings);
    this.labels(c, 'config.labels', config.labels);
    this.annotations(c, 'config.annotations', config.annotations);
    const linux = config.linux;
    if (linux) {
      c.path('config.linux.cgroupParent', linux.cgroupParent);
      const sysctls = Object.entries(linux.sysctls);
      c.count('config.linux.sysctls', sysctls, F.sysctls, 'a fixed bound');
      for (const [name, value] of sysctls) {
        c.rule(`config.linux.sysctls[${quote(name)}]`, name, sysctlNameProblem(name));
        c.text(`config.linux.sysctls[${quote(name)}]`, value, F.sysctlValueBytes, 'a fixed bound');
        if (/[\n\r]/.test(value)) c.fail(`config.linux.sysctls[${quote(name)}]`, 'contains a line break');
      }
      if (linux.securityContext) this.securityContext(c, 'config.linux.securityContext', linux.securityContext);
      if (linux.overhead) this.resources(c, 'config.linux.overhead', linux.overhead);
      if (linux.resources) this.resources(c, 'config.linux.resources', linux.resources);
    }
    this.windows(c, 'config.windows', config.windows);
  }

  /** UpdatePodSandboxResources' overhead and resources. */
  podResources(rpc: string, overhead: LinuxContainerResources__Output | null, resources: LinuxContainerResources__Output | null): void {
    const c: Check = new Check(rpc);
    if (overhead) this.resources(c, 'overhead', overhead);
    if (resources) this.resources(c, 'resources', resources);
  }

  // ---- containers -------------------------------------------------------------------------------

  containerConfig(rpc: string, config: ContainerConfig__Output | null | undefined): asserts config is ContainerConfig__Output {
    const c: Check = new Check(rpc);
    if (!config?.metadata) c.fail('config.metadata', 'is required');
    c.rule('config.metadata.name', config.metadata.name, nameProblem(config.metadata.name));
    if (!config.image?.image) c.fail('config.image.image', 'must name an image');
    this.image(c, 'config.image', config.image);
    this.commandLine(c, { 'config.command': config.command, 'config.args': config.args }, 'config.command and config.args');
    c.path('config.workingDir', config.workingDir);
    this.env(c, 'config.envs', config.envs);
    c.count('config.mounts', config.mounts, this.limits.maxMounts, LIMIT_KEYS.maxMounts);
    config.mounts.forEach((mount, i) => {
      const p = `config.mounts[${i}]`;
      c.path(`${p}.containerPath`, mount.containerPath);
      c.path(`${p}.hostPath`, mount.hostPath);
      c.count(`${p}.uidMappings`, mount.uidMappings, F.idMappings, 'the kernel\'s extents per id map');
      c.count(`${p}.gidMappings`, mount.gidMappings, F.idMappings, 'the kernel\'s extents per id map');
      if (mount.image) this.image(c, `${p}.image`, mount.image);
      c.path(`${p}.imageSubPath`, mount.imageSubPath);
    });
    c.count('config.devices', config.devices, this.limits.maxDevices, LIMIT_KEYS.maxDevices);
    config.devices.forEach((dev, i) => {
      c.path(`config.devices[${i}].containerPath`, dev.containerPath);
      c.path(`config.devices[${i}].hostPath`, dev.hostPath);
      if (!/^[rwm]{0,3}$/.test(dev.permissions)) c.rule(`config.devices[${i}].permissions`, dev.permissions, 'is not made of "r", "w" and "m"');
    });
    c.count('config.CDIDevices', config.CDIDevices, this.limits.maxDevices, LIMIT_KEYS.maxDevices);
    config.CDIDevices.forEach((dev, i) => c.text(`config.CDIDevices[${i}].name`, dev.name, F.profileBytes, 'a fixed bound'));
    this.labels(c, 'config.labels', config.labels);
    this.annotations(c, 'config.annotations', config.annotations);
    if (config.logPath) {
      c.path('config.logPath', config.logPath);
      if (isAbsolute(config.logPath) || hasDotSegment(config.logPath, ['..'])) {
        c.rule('config.logPath', config.logPath, 'must be a relative path inside the pod\'s log directory (no "..")');
      }
    }
    const linux = config.linux;
    if (linux?.resources) this.resources(c, 'config.linux.resources', linux.resources);
    if (linux?.securityContext) this.securityContext(c, 'config.linux.securityContext', linux.securityContext);
    this.windows(c, 'config.windows', config.windows);
  }

  /** UpdateContainerResources' linux resources. */
  containerResources(rpc: string, resources: LinuxContainerResources__Output | null | undefined): void {
    if (resources) this.resources(new Check(rpc), 'linux', resources);
  }

  /** Exec and ExecSync: the command line is stored (Exec's token) and passed to execve. */
  execCommand(rpc: string, cmd: readonly string[]): void {
    this.commandLine(new Check(rpc), { cmd }, 'cmd');
  }

  portForwardPorts(rpc: string, ports: readonly number[]): void {
    new Check(rpc).count('port', ports, F.portForwardPorts, 'a fixed bound');
  }

  /** PullImage, ImageStatus, RemoveImage: the reference or id named. */
  imageReference(rpc: string, spec: ImageSpec__Output | null | undefined): void {
    if (spec) this.image(new Check(rpc), 'image', spec);
  }

  // ---- parts ------------------------------------------------------------------------------------

  private image(c: Check, path: string, spec: ImageSpec__Output): void {
    c.text(`${path}.image`, spec.image, F.imageRefBytes, 'the longest image reference');
    c.text(`${path}.userSpecifiedImage`, spec.userSpecifiedImage, F.imageRefBytes, 'the longest image reference');
    c.text(`${path}.imageRef`, spec.imageRef, F.imageRefBytes, 'the longest image reference');
    c.text(`${path}.runtimeHandler`, spec.runtimeHandler, 253, 'a DNS subdomain\'s length');
    const size = mapBytes(spec.annotations);
    c.atMost(`${path}.annotations`, size, this.limits.maxAnnotationBytes, 'bytes (keys and values)', LIMIT_KEYS.maxAnnotationBytes);
  }

  /** One command line given as named parts (command and args): summed, then each string. */
  private commandLine(c: Check, parts: Record<string, readonly string[]>, what: string): void {
    let total = 0;
    for (const args of Object.values(parts)) for (const a of args) total += Buffer.byteLength(a) + 1;
    c.atMost(what, total, this.limits.maxArgsBytes, 'bytes', LIMIT_KEYS.maxArgsBytes);
    for (const [path, args] of Object.entries(parts)) {
      args.forEach((a, i) => c.text(`${path}[${i}]`, a, F.argStringBytes, 'the kernel\'s MAX_ARG_STRLEN'));
    }
  }

  private env(c: Check, path: string, envs: ContainerConfig__Output['envs']): void {
    let total = 0;
    for (const e of envs) total += Buffer.byteLength(e.key) + e.value.length + 2;
    c.atMost(path, total, this.limits.maxEnvBytes, 'bytes (names and values)', LIMIT_KEYS.maxEnvBytes);
    envs.forEach((e, i) => {
      if (e.key === '' || e.key.includes('=') || e.key.includes('\0')) {
        c.rule(`${path}[${i}].key`, e.key, 'must be a non-empty name without "=" or NUL');
      }
      if (e.value.includes(0)) c.fail(`${path}[${i}].value`, 'contains a NUL byte');
      c.atMost(`${path}[${i}]`, Buffer.byteLength(e.key) + 1 + e.value.length, F.argStringBytes, 'bytes', 'the kernel\'s MAX_ARG_STRLEN');
    });
  }

  private labels(c: Check, path: string, labels: Record<string, string>): void {
    c.atMost(path, mapBytes(labels), this.limits.maxLabelBytes, 'bytes (keys and values)', LIMIT_KEYS.maxLabelBytes);
    for (const [k, v] of Object.entries(labels)) {
      c.rule(`${path} key`, k, qualifiedNameProblem(k));
      c.rule(`${path}[${quote(k)}]`, v, labelValueProblem(v));
    }
  }

  private annotations(c: Check, path: string, annotations: Record<string, string>): void {
    c.atMost(path, mapBytes(annotations), this.limits.maxAnnotationBytes, 'bytes (keys and values)', LIMIT_KEYS.maxAnnotationBytes);
    for (const k of Object.keys(annotations)) c.rule(`${path} key`, k, qualifiedNameProblem(k, true));
  }

  private absolutePath(c: Check, path: string, value: string): void {
    c.path(path, value);
    if (!isAbsolute(value) || hasDotSegment(value, ['.', '..'])) {
      c.rule(path, value, 'must be an absolute path without "." or ".." components');
    }
  }

  private dns(c: Check, path: string, dns: DNSConfig__Output): void {
    c.count(`${path}.servers`, dns.servers, F.dnsServers, 'kubelet\'s and the C library\'s three nameservers');
    dns.servers.forEach((s, i) => {
      if (isIP(s) === 0) c.rule(`${path}.servers[${i}]`, s, 'is not an IP address');
    });
    c.count(`${path}.searches`, dns.searches, F.dnsSearches, 'kubelet\'s MaxDNSSearchPaths');
    c.atMost(`${path}.searches`, dns.searches.join(' ').length, F.dnsSearchChars, 'characters', 'kubelet\'s MaxDNSSearchListChars');
    dns.searches.forEach((s, i) => {
      const name = s.endsWith('.') ? s.slice(0, -1) : s;
      c.text(`${path}.searches[${i}]`, s, F.dnsEntryBytes + 1, 'a DNS name\'s length');
      if (!/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/.test(name)) c.rule(`${path}.searches[${i}]`, s, 'is not a DNS name');
    });
    c.count(`${path}.options`, dns.options, F.dnsOptions, 'a fixed bound');
    dns.options.forEach((o, i) => {
      c.text(`${path}.options[${i}]`, o, F.dnsEntryBytes, 'a fixed bound');
      if (!/^[A-Za-z0-9][A-Za-z0-9_.:+-]*$/.test(o)) c.rule(`${path}.options[${i}]`, o, 'is not a resolver option like "ndots:5"');
    });
  }

  private portMappings(c: Check, path: string, mappings: readonly PortMapping__Output[]): void {
    c.count(path, mappings, this.limits.maxPortMappings, LIMIT_KEYS.maxPortMappings);
    mappings.forEach((pm, i) => {
      const p = `${path}[${i}]`;
      if (!PORT_PROTOCOLS.has(String(pm.protocol))) c.rule(`${p}.protocol`, String(pm.protocol), 'is not TCP, UDP or SCTP');
      for (const field of ['containerPort', 'hostPort'] as const) {
        const port = pm[field];
        if (!Number.isInteger(port) || port < 0 || port > 65535) c.fail(`${p}.${field}`, `${port} is not a port number (0-65535)`);
      }
      if (pm.hostIp !== '' && isIP(pm.hostIp) === 0) c.rule(`${p}.hostIp`, pm.hostIp, 'is not an IP address');
    });
  }

  private securityContext(
    c: Check,
    path: string,
    sc: LinuxContainerSecurityContext__Output | LinuxSandboxSecurityContext__Output,
  ): void {
    c.count(`${path}.supplementalGroups`, sc.supplementalGroups, F.supplementalGroups, 'NGROUPS_MAX');
    c.path(`${path}.seccompProfilePath`, sc.seccompProfilePath);
    for (const profile of ['seccomp', 'apparmor'] as const) {
      const ref = sc[profile]?.localhostRef;
      if (ref) c.text(`${path}.${profile}.localhostRef`, ref, F.profileBytes, 'a fixed bound');
    }
    const se = sc.selinuxOptions;
    if (se) {
      for (const f of ['user', 'role', 'type', 'level'] as const) {
        c.text(`${path}.selinuxOptions.${f}`, se[f], F.profileBytes, 'a fixed bound');
      }
    }
    if (!('capabilities' in sc)) return;
    const caps = sc.capabilities;
    if (caps) {
      for (const list of ['addCapabilities', 'dropCapabilities', 'addAmbientCapabilities'] as const) {
        c.count(`${path}.capabilities.${list}`, caps[list], F.capabilities, 'a fixed bound');
        caps[list].forEach((cap, i) => c.text(`${path}.capabilities.${list}[${i}]`, cap, F.capabilityBytes, 'a fixed bound'));
      }
    }
    c.text(`${path}.runAsUsername`, sc.runAsUsername, F.userNameBytes, 'LOGIN_NAME_MAX');
    c.path(`${path}.apparmorProfile`, sc.apparmorProfile);
    for (const list of ['maskedPaths', 'readonlyPaths'] as const) {
      c.count(`${path}.${list}`, sc[list], F.maskedPaths, 'a fixed bound');
      sc[list].forEach((p, i) => c.path(`${path}.${list}[${i}]`, p));
    }
  }

  private resources(c: Check, path: string, r: LinuxContainerResources__Output): void {
    c.text(`${path}.cpusetCpus`, r.cpusetCpus, F.profileBytes, 'a fixed bound');
    c.text(`${path}.cpusetMems`, r.cpusetMems, F.profileBytes, 'a fixed bound');
    c.count(`${path}.hugepageLimits`, r.hugepageLimits, F.hugepageLimits, 'a fixed bound');
    r.hugepageLimits.forEach((h, i) => {
      if (!/^[0-9]{1,8}[KMG]B$/.test(h.pageSize)) c.rule(`${path}.hugepageLimits[${i}].pageSize`, h.pageSize, 'is not a page size like "2MB"');
    });
    const unified = Object.entries(r.unified);
    c.count(`${path}.unified`, unified, F.unifiedEntries, 'a fixed bound');
    for (const [file, value] of unified) {
      // A key names a file in the container's cgroup directory: never a path out of it.
      if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+$/.test(file) || file.includes('..') || file.length > 253) {
        c.rule(`${path}.unified key`, file, 'is not a cgroup interface file name like "memory.high"');
      }
      c.text(`${path}.unified[${quote(file)}]`, value, F.unifiedValueBytes, 'a fixed bound');
    }
  }

  /** crib runs Linux containers: a Windows section is kept as given but must stay small. */
  private windows(c: Check, path: string, section: unknown): void {
    if (section === null || section === undefined) return;
    c.atMost(path, Buffer.byteLength(JSON.stringify(section)), WINDOWS_SECTION_BYTES, 'bytes', 'a fixed bound: crib ignores it');
  }
}

function hasDotSegment(path: string, dots: readonly string[]): boolean {
  return path.split('/').some((seg) => dots.includes(seg));
}
