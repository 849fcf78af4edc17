// crib-runtime restore's checks of the NEW bundle against a checkpoint, made before criu runs (so
// they hold on any node, criu working or not): every bind mount the checkpoint declared external
// must have a source in the new spec (it is bound from there, by destination) and the new spec may
// bind nothing more (criu rebuilds the mount tree from its images), and the namespaces
// the new spec joins by path must be ones a restore can join (IPC and UTS are joined with criu
// --join-ns; the network namespace is inherited; a PID namespace cannot be). Nothing is left.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, testTag, type Bundle } from './support/runtime-bundle.js';
import { NOTHING_LEFT, Runtime, leftovers } from './support/runtime-runner.js';

describe('crib-runtime restore: the new bundle checked against the checkpoint', () => {
  let rt: Runtime;
  let images: string;
  const bundles: Bundle[] = [];

  beforeAll(async () => {
    rt = await Runtime.crib();
    // What `checkpoint` writes beside criu's images (criu.h): a dump that declared /out external.
    images = await mkdtemp(join(tmpdir(), `${testTag}-images-`));
    await writeFile(join(images, 'descriptors.json'), '["/dev/null","pipe:[1]","pipe:[2]"]');
    await writeFile(join(images, 'crib-criu.json'), '{"shellJob":true,"netns":null,"externalMounts":["/out"]}');
  });
  afterAll(async () => {
    for (const b of bundles) await b.remove();
    await rm(images, { recursive: true, force: true });
    await rm(rt.root, { recursive: true, force: true });
    expect(leftovers()).toEqual(NOTHING_LEFT);
  });

  const restore = async (b: Bundle) => {
    bundles.push(b);
    const r = await rt.exec(['restore', '--image-path', images, '--work-path', images, '--bundle', b.dir, '--detach', b.id]);
    expect(r.code).not.toBe(0);
    // Nothing made: no state, and criu never ran (no restore log).
    expect(await readdir(rt.root).catch(() => [])).toEqual([]);
    expect((await readdir(images)).sort()).toEqual(['crib-criu.json', 'descriptors.json']);
    return r.stderr;
  };

  it('refuses a bundle without a source for a bind mount of the checkpoint, naming its destination', async () => {
    const b = await makeBundle('restore-nomount', ['true'], (s) => {
      s.mounts = s.mounts.filter((m: { destination: string }) => m.destination !== '/out');
    });
    expect(await restore(b)).toMatch(/the checkpoint had a bind mount at `\/out` and the bundle's spec has none there/);
  });

  it('refuses a bundle that binds more than the checkpoint had: criu would leave the mount out', async () => {
    const b = await makeBundle('restore-addmount', ['true'], (s) => {
      s.mounts.push({ destination: '/extra', type: 'bind', source: '/tmp', options: ['rbind', 'ro'] });
    });
    expect(await restore(b)).toMatch(/the bundle's spec binds `\/extra`, which the checkpointed container did not have/);
  });

  it('refuses to restore into a PID namespace the spec joins by path', async () => {
    const b = await makeBundle('restore-pidns', ['true'], (s) => {
      s.linux.namespaces = s.linux.namespaces.map((n: { type: string }) => (n.type === 'pid' ? { type: 'pid', path: '/proc/1/ns/pid' } : n));
    });
    expect(await restore(b)).toMatch(/joins the pid namespace `\/proc\/1\/ns\/pid`: a checkpoint can be restored only into new pid namespaces/);
  });

  it('refuses a joined UTS namespace path criu --join-ns would misread', async () => {
    const b = await makeBundle('restore-comma', ['true'], (s) => {
      s.linux.namespaces = s.linux.namespaces.map((n: { type: string }) => (n.type === 'uts' ? { type: 'uts', path: '/run/a,b' } : n));
    });
    expect(await restore(b)).toMatch(/the uts namespace path `\/run\/a,b` contains a comma/);
  });
});
