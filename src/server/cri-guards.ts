// What every RPC handler that takes CRI input shares: the validator (per-object limits) and the
// node-wide listed-size budget, both built from the config's [limits] section.
import type { CribConfig } from '../config/config.js';
import type { ContainerService } from '../container/container-service.js';
import type { SandboxService } from '../sandbox/sandbox-service.js';
import type { CriLimits } from './cri-limits.js';
import { ListedBudget, containerListedBytes, podListedBytes, type ListedObject } from './listed-size.js';
import { CriValidator } from './validate-cri.js';

export interface CriGuards {
  validate: CriValidator;
  listed: ListedBudget;
}

export function criLimitsFromConfig(limits: CribConfig['limits']): CriLimits {
  return {
    maxAnnotationBytes: limits.max_annotation_bytes,
    maxLabelBytes: limits.max_label_bytes,
    maxEnvBytes: limits.max_env_bytes,
    maxArgsBytes: limits.max_args_bytes,
    maxMounts: limits.max_mounts,
    maxDevices: limits.max_devices,
    maxPortMappings: limits.max_port_mappings,
    maxListedBytes: limits.max_listed_bytes,
  };
}

export function criGuards(limits: CriLimits, pods: SandboxService, containers: ContainerService): CriGuards {
  function* stored(): Iterable<ListedObject> {
    // Records still being created count too: they are listed as soon as they are ready.
    for (const p of pods.allRecords()) {
      yield { id: p.id, config: p.config, bytes: () => podListedBytes(p.config, p.runtimeHandler) };
    }
    for (const c of containers.allRecords()) {
      yield { id: c.id, config: c.config, bytes: () => containerListedBytes(c.config, c.logPath) };
    }
  }
  return { validate: new CriValidator(limits), listed: new ListedBudget(limits.maxListedBytes, stored) };
}
