// The Pod fields `crib kube play` implements, as a schema (field-schema.ts). A field missing here
// is reported as unsupported by its path, never ignored; the bounds keep one manifest from
// asking for more than a node should do for a hand-run pod.
import { bool, int, intOrString, list, map, obj, quantity, str, type Schema } from './field-schema.js';

export const MAX_CONTAINERS = 16;
export const MAX_INIT_CONTAINERS = 16;
export const MAX_VOLUMES = 64;
const MAX_ARGS = 256;
const MAX_ENV = 512;

const name = str({ max: 253 });
const port = int(1, 65535);
const stringMap = map(str());

export const metadataSchema = obj({
  name,
  namespace: str({ max: 63 }),
  uid: str({ max: 128 }),
  labels: stringMap,
  annotations: stringMap,
});

const keyRef = obj({ name, key: str({ max: 253 }), optional: bool }, ['name', 'key']);
const envVar = obj({
  name: str({ max: 1024 }),
  value: str(),
  valueFrom: obj({
    fieldRef: obj({ fieldPath: str({ oneOf: ['metadata.name', 'metadata.namespace', 'metadata.uid', 'status.podIP', 'spec.nodeName'] }), apiVersion: str({ oneOf: ['v1'] }) }, ['fieldPath']),
    configMapKeyRef: keyRef,
    secretKeyRef: keyRef,
  }),
}, ['name']);

const handler = {
  exec: obj({ command: list(str(), MAX_ARGS) }, ['command']),
  httpGet: obj({ path: str({ max: 4096 }), port: intOrString, host: str({ max: 253 }), scheme: str({ oneOf: ['HTTP'] }), httpHeaders: list(obj({ name: str({ max: 256 }), value: str({ max: 4096 }) }, ['name', 'value']), 32) }, ['port']),
  tcpSocket: obj({ port: intOrString, host: str({ max: 253 }) }, ['port']),
};
const probe = obj({
  ...handler,
  initialDelaySeconds: int(0, 86_400),
  periodSeconds: int(1, 86_400),
  timeoutSeconds: int(1, 86_400),
  successThreshold: int(1, 1000),
  failureThreshold: int(1, 1000),
  terminationGracePeriodSeconds: int(1, 86_400),
});

const resourceNames = ['cpu', 'memory'] as const;
const securityContext = obj({
  runAsUser: int(0, 2 ** 32 - 2),
  runAsGroup: int(0, 2 ** 32 - 2),
  runAsNonRoot: bool,
  privileged: bool,
  readOnlyRootFilesystem: bool,
  allowPrivilegeEscalation: bool,
  capabilities: obj({ add: list(str({ max: 64 }), 64), drop: list(str({ max: 64 }), 64) }),
});

const container = obj({
  name: str({ max: 63 }),
  image: str({ max: 4096 }),
  imagePullPolicy: str({ oneOf: ['Always', 'IfNotPresent', 'Never'] }),
  command: list(str(), MAX_ARGS),
  args: list(str(), MAX_ARGS),
  workingDir: str({ max: 4096 }),
  env: list(envVar, MAX_ENV),
  ports: list(obj({ name: str({ max: 15 }), containerPort: port, hostPort: port, hostIP: str({ max: 64 }), protocol: str({ oneOf: ['TCP', 'UDP', 'SCTP'] }) }, ['containerPort']), 64),
  resources: obj({ requests: map(quantity, { keys: resourceNames }), limits: map(quantity, { keys: resourceNames }) }),
  volumeMounts: list(obj({ name: str({ max: 63 }), mountPath: str({ max: 4096 }), readOnly: bool }, ['name', 'mountPath']), 64),
  livenessProbe: probe,
  readinessProbe: probe,
  startupProbe: probe,
  securityContext,
  terminationMessagePath: str({ max: 4096 }),
  terminationMessagePolicy: str({ oneOf: ['File', 'FallbackToLogsOnError'] }),
  stdin: bool,
  tty: bool,
}, ['name', 'image']);

const keyToPath = list(obj({ key: str({ max: 253 }), path: str({ max: 4096 }), mode: int(0, 0o777) }, ['key', 'path']), 256);
const volume = obj({
  name: str({ max: 63 }),
  emptyDir: obj({ medium: str({ oneOf: ['', 'Memory'] }), sizeLimit: quantity }),
  hostPath: obj({ path: str({ max: 4096 }), type: str({ oneOf: ['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket'] }) }, ['path']),
  configMap: obj({ name, items: keyToPath, defaultMode: int(0, 0o777), optional: bool }, ['name']),
  secret: obj({ secretName: name, items: keyToPath, defaultMode: int(0, 0o777), optional: bool }, ['secretName']),
}, ['name']);

export const podSpecSchema = obj({
  containers: list(container, MAX_CONTAINERS),
  initContainers: list(container, MAX_INIT_CONTAINERS),
  restartPolicy: str({ oneOf: ['Always', 'OnFailure', 'Never'] }),
  volumes: list(volume, MAX_VOLUMES),
  terminationGracePeriodSeconds: int(0, 86_400),
  hostname: str({ max: 63 }),
  hostNetwork: bool,
  hostPID: bool,
  hostIPC: bool,
  shareProcessNamespace: bool,
  dnsPolicy: str({ oneOf: ['Default', 'ClusterFirst', 'None'] }),
  dnsConfig: obj({
    nameservers: list(str({ max: 64 }), 3),
    searches: list(str({ max: 253 }), 32),
    options: list(obj({ name: str({ max: 64 }), value: str({ max: 64 }) }, ['name']), 32),
  }),
  securityContext: obj({
    runAsUser: int(0, 2 ** 32 - 2),
    runAsGroup: int(0, 2 ** 32 - 2),
    runAsNonRoot: bool,
    supplementalGroups: list(int(0, 2 ** 32 - 2), 64),
    sysctls: list(obj({ name: str({ max: 256 }), value: str({ max: 4096 }) }, ['name', 'value']), 64),
  }),
}, ['containers']);

export const podSchema = obj({
  apiVersion: str({ oneOf: ['v1'] }),
  kind: str({ oneOf: ['Pod'] }),
  metadata: metadataSchema,
  spec: podSpecSchema,
}, ['metadata', 'spec']);

const template = obj({ metadata: obj({ name, namespace: str({ max: 63 }), labels: stringMap, annotations: stringMap }), spec: podSpecSchema }, ['spec']);
const selector = obj({ matchLabels: stringMap });

/** Workloads whose pod template is played as one pod: one replica, nothing a controller does. */
export const workloadSchemas: Record<string, { apiVersion: string; schema: Schema }> = {
  Deployment: {
    apiVersion: 'apps/v1',
    schema: obj({ apiVersion: str(), kind: str(), metadata: metadataSchema, spec: obj({ replicas: int(1, 1), selector, template }, ['template']) }, ['metadata', 'spec']),
  },
  ReplicaSet: {
    apiVersion: 'apps/v1',
    schema: obj({ apiVersion: str(), kind: str(), metadata: metadataSchema, spec: obj({ replicas: int(1, 1), selector, template }, ['template']) }, ['metadata', 'spec']),
  },
  Job: {
    apiVersion: 'batch/v1',
    schema: obj({ apiVersion: str(), kind: str(), metadata: metadataSchema, spec: obj({ parallelism: int(1, 1), completions: int(1, 1), template }, ['template']) }, ['metadata', 'spec']),
  },
};
