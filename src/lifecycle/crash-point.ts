// Named places where a crash would leave the node half-changed: every await between a side
// effect (a process, a mount, a veth, an address) and the record write that says so. The
// crash-point test (critest/crash-points.test.ts) kills the daemon at each of them in turn and
// checks that start-up finishes or undoes what was interrupted. Outside that test this is one
// comparison against a constant read once at start-up.
//
// CRIB_TEST_HOOKS=1 and CRIB_CRASH_POINT=<name>: the daemon SIGKILLs itself at that point, the
// way kill -9 or a power cut would stop it: no finally blocks, no flushed logs.

const armed = process.env.CRIB_TEST_HOOKS === '1' ? process.env.CRIB_CRASH_POINT || undefined : undefined;

/** Every crash point's name, so that the test can prove it covers them all. */
export const CRASH_POINTS = [
  'RunPodSandbox:after-addresses',
  'RunPodSandbox:after-record',
  'RunPodSandbox:after-pin',
  'RunPodSandbox:after-pod-init',
  'RunPodSandbox:after-network',
  'RunPodSandbox:after-files',
  'StopPodSandbox:after-intent',
  'StopPodSandbox:after-containers',
  'StopPodSandbox:after-pod-init',
  'StopPodSandbox:after-network',
  'RemovePodSandbox:after-intent',
  'RemovePodSandbox:after-containers',
  'RemovePodSandbox:after-network',
  'RemovePodSandbox:after-record',
  'RemovePodSandbox:after-teardown',
  'CreateContainer:after-record',
  'CreateContainer:after-writable-layer',
  'CreateContainer:after-mount',
  'CreateContainer:after-bundle',
  'CreateContainer:after-record-synced',
  'StartContainer:after-runtime-create',
  'StartContainer:after-intent',
  'StartContainer:after-runtime-start',
  'StopContainer:after-signal',
  'StopContainer:after-kill',
  'ContainerExit:before-runtime-delete',
  'RemoveContainer:after-intent',
  'RemoveContainer:after-runtime-delete',
  'RemoveContainer:after-unmount',
  'CheckpointContainer:after-pause',
  'PullImage:after-layers',
  'PullImage:after-record',
  'RemoveImage:after-record',
] as const;

export type CrashPointName = (typeof CRASH_POINTS)[number];

/** Dies here (SIGKILL, at once) when the test armed this point; otherwise does nothing. */
export function crashPoint(name: CrashPointName): void {
  if (armed === name) process.kill(process.pid, 'SIGKILL');
}
