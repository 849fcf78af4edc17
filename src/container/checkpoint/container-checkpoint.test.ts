// CheckpointContainer's sequence against the in-memory runtime: the container is paused from
// before the dump until its rootfs diff is written, resumed on every way out, and a checkpoint a
// crash interrupts leaves the mark start-up resumes it by. Real files in a temp dir.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FailedPreconditionError } from '../../errors.js';
import type { CheckpointOptions, RuntimeRef } from '../../runtime/container-runtime.js';
import { FakeContainerRuntime } from '../../../test-support/fake-container-runtime.js';
import { unpackCheckpointArchive, type ConfigDump } from './checkpoint-archive.js';
import { CHECKPOINT_WORK_DIR, checkpointContainer, finishInterruptedCheckpoint } from './container-checkpoint.js';
import { applyRootfsDiff } from './rootfs-diff.js';

const CONFIG: ConfigDump = {
  id: 'c1', name: 'count', rootfsImage: 'sha256:aa', rootfsImageRef: 'sha256:aa', rootfsImageName: 'busybox:latest',
  runtime: 'crib', createdTime: '2026-01-01T00:00:00.000Z', checkpointedTime: '',
};

/** The in-memory runtime, with a hook run inside resume() before it resolves. */
class PausingRuntime extends FakeContainerRuntime {
  duringResume: (() => Promise<void>) | undefined;
  override async resume(c: RuntimeRef): Promise<void> {
    await super.resume(c);
    await this.duringResume?.();
  }
}

describe('checkpointContainer', () => {
  let dir: string;
  let runtime: PausingRuntime;
  let ref: RuntimeRef;
  let upper: string;
  let specPath: string;
  let location: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-ckpt-flow-'));
    ref = { id: 'c1', dir: join(dir, 'state') };
    upper = join(dir, 'upper');
    specPath = join(dir, 'config.json');
    location = join(dir, 'out', 'c1.tar');
    await mkdir(ref.dir, { recursive: true });
    await mkdir(upper);
    await mkdir(join(dir, 'out'));
    await writeFile(specPath, '{"process":{"args":["sh"]}}');
    runtime = new PausingRuntime();
    await runtime.create(ref, { bundle: dir, logPath: join(dir, 'log'), stdin: false, stdinOnce: false, tty: false });
    await runtime.start(ref);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const checkpoint = (timeoutS = 30) => checkpointContainer(runtime, { ref, config: CONFIG, specPath, upperdir: upper }, location, timeoutS);
  const workDir = () => join(ref.dir, CHECKPOINT_WORK_DIR);
  const verbs = () => runtime.calls.filter((c) => /^(pause|checkpoint|resume) /.test(c)).map((c) => c.split(' ')[0]);

  /** The archive's rootfs diff applied onto an empty dir: the container's files as archived. */
  async function archivedFiles(): Promise<string> {
    const unpacked = await unpackCheckpointArchive(location, join(dir, 'unpacked'));
    const applied = join(dir, 'applied');
    await mkdir(applied);
    await applyRootfsDiff(unpacked.rootfsDiffTar!, applied, { maxBytes: 1 << 20, maxEntries: 100 });
    return applied;
  }

  it('takes the rootfs diff while the container is paused: files of the moment of the dump, not of later', async () => {
    // The container counts: 41 at the dump, and it writes 42 as soon as it runs again.
    runtime.duringCheckpoint = async () => {
      expect(runtime.containers.get('c1')!.paused, 'paused during the dump').toBe(true);
      await writeFile(join(upper, 'counter'), '41\n');
    };
    runtime.duringResume = async () => {
      await writeFile(join(upper, 'counter'), '42\n');
    };
    await checkpoint();
    expect(verbs()).toEqual(['pause', 'checkpoint', 'resume']);
    expect(runtime.containers.get('c1')!.paused).toBe(false);
    expect(await readFile(join(await archivedFiles(), 'counter'), 'utf8')).toBe('41\n');
    expect(existsSync(workDir()), 'the work dir is gone once done').toBe(false);
  });

  it('resumes the container when the dump fails, and leaves nothing behind', async () => {
    runtime.duringCheckpoint = async () => {
      throw new FailedPreconditionError('checkpointing container c1 with runtime crib: criu failed');
    };
    await expect(checkpoint()).rejects.toThrow(/criu failed/);
    expect(verbs()).toEqual(['pause', 'checkpoint', 'resume']);
    expect(runtime.containers.get('c1')!.paused).toBe(false);
    expect(existsSync(workDir())).toBe(false);
    expect(existsSync(location)).toBe(false);
  });

  it('resumes the container when its timeout expires during the dump', async () => {
    runtime.duringCheckpoint = async (_id: string, o: CheckpointOptions) => {
      // As the real runtime does: killed at its timeout, which is the call's.
      await new Promise((resolve) => setTimeout(resolve, o.timeoutMs + 50));
    };
    await expect(checkpoint(1)).rejects.toThrow(/took longer than its timeout of 1 s/);
    expect(verbs()).toEqual(['pause', 'checkpoint', 'resume']);
    expect(runtime.containers.get('c1')!.paused).toBe(false);
    expect(existsSync(location)).toBe(false);
  });

  it('a container the runtime will not resume keeps the mark, and start-up resumes it', async () => {
    runtime.duringCheckpoint = async () => {
      throw new FailedPreconditionError('criu failed');
    };
    runtime.failResume = 'the cgroup freezer refused';
    await expect(checkpoint()).rejects.toThrow(/criu failed/);
    expect(runtime.containers.get('c1')!.paused).toBe(true);
    expect(existsSync(workDir()), 'the mark start-up looks for').toBe(true);

    runtime.failResume = undefined;
    runtime.calls.length = 0;
    expect(await finishInterruptedCheckpoint(runtime, ref)).toBe(true);
    expect(verbs()).toEqual(['resume']);
    expect(runtime.containers.get('c1')!.paused).toBe(false);
    expect(existsSync(workDir())).toBe(false);
  });

  it('start-up resumes nothing where no checkpoint was under way', async () => {
    expect(await finishInterruptedCheckpoint(runtime, ref)).toBe(false);
    expect(verbs()).toEqual([]);
  });

  it('a work dir an interrupted checkpoint left does not join the next archive', async () => {
    await mkdir(join(workDir(), 'images'), { recursive: true });
    await writeFile(join(workDir(), 'images', 'stale.img'), 'from an earlier dump');
    runtime.duringCheckpoint = async (_id: string, o: CheckpointOptions) => {
      await writeFile(join(o.imagePath, 'core-1.img'), 'this dump');
    };
    await checkpoint();
    // The container that checkpoint may have left paused was resumed first.
    expect(verbs()).toEqual(['resume', 'pause', 'checkpoint', 'resume']);
    const unpacked = await unpackCheckpointArchive(location, join(dir, 'unpacked'));
    expect(existsSync(join(unpacked.imagesDir, 'core-1.img'))).toBe(true);
    expect(existsSync(join(unpacked.imagesDir, 'stale.img'))).toBe(false);
  });
});
