import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromObject, loadConfig } from './config.js';
import { formatByteSize, parseByteSize } from './byte-size.js';
import { parseDurationMs } from './duration.js';
import { DEFAULT_IMAGE_LIMITS, imageLimitsFromConfig } from '../image/limits.js';
import { InvalidArgumentError } from '../errors.js';

describe('config', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has working defaults with no file at all', () => {
    const c = configFromObject({});
    expect(c.root).toBe('/var/lib/crib');
    expect(c.state).toBe('/run/crib');
    expect(c.grpc.address).toBe('unix:///run/crib/crib.sock');
    expect(c.image.max_concurrent_downloads).toBe(3);
    expect(c.image.pull_progress_timeout).toBe(300_000);
  });

  it('reads a TOML file with registry mirrors and durations', async () => {
    const file = join(dir, 'ok.toml');
    await writeFile(
      file,
      `root = "/tmp/x"\n[image]\npull_progress_timeout = "90s"\n` +
        `[registry."docker.io"]\nmirrors = ["http://127.0.0.1:5000"]\n`,
    );
    const c = await loadConfig(file);
    expect(c.root).toBe('/tmp/x');
    expect(c.image.pull_progress_timeout).toBe(90_000);
    expect(c.registry['docker.io']?.mirrors).toEqual(['http://127.0.0.1:5000']);
  });

  it('names an unknown key, even a nested one', async () => {
    const file = join(dir, 'bad.toml');
    await writeFile(file, `[image]\nmax_concurent_downloads = 4\n`);
    await expect(loadConfig(file)).rejects.toThrow(/unknown key "image.max_concurent_downloads"/);
    expect(() => configFromObject({ rooot: '/x' })).toThrow(/unknown key "rooot"/);
  });

  it('names a value of the wrong type', () => {
    expect(() => configFromObject({ image: { retries: 'many' } })).toThrow(InvalidArgumentError);
    expect(() => configFromObject({ image: { pull_progress_timeout: '5 minutes' } })).toThrow(
      /image.pull_progress_timeout: "5 minutes" is not a duration/,
    );
  });

  it('reads the blob download rate floor and refuses one out of bounds, naming the key', () => {
    const d = configFromObject({});
    expect(d.image.pull_min_rate).toBe(1024);
    expect(d.image.pull_min_rate_grace).toBe(300_000);
    const c = configFromObject({ image: { pull_min_rate: '64KiB', pull_min_rate_grace: '2m' } });
    expect(c.image.pull_min_rate).toBe(65_536);
    expect(c.image.pull_min_rate_grace).toBe(120_000);
    expect(() => configFromObject({ image: { pull_min_rate: 0 } })).toThrow(/image.pull_min_rate/);
    expect(() => configFromObject({ image: { pull_min_rate: '2GiB' } })).toThrow(/image.pull_min_rate: must be at most 1GiB/);
    expect(() => configFromObject({ image: { pull_min_rate_grace: '500ms' } })).toThrow(/image.pull_min_rate_grace: must be at least 1s/);
    expect(() => configFromObject({ image: { pull_min_rate_grace: '25h' } })).toThrow(/image.pull_min_rate_grace: must be at most 24h/);
  });

  it('treats a missing default file as defaults but a missing explicit file as an error', async () => {
    await expect(loadConfig(join(dir, 'nope.toml'))).rejects.toThrow(/cannot read config file/);
  });

  it('reports TOML syntax errors with the file name', async () => {
    const file = join(dir, 'syntax.toml');
    await writeFile(file, `root = \n`);
    await expect(loadConfig(file)).rejects.toThrow(/syntax.toml is not valid TOML/);
  });

  it('parses durations', () => {
    expect(parseDurationMs('1m30s')).toBe(90_000);
    expect(parseDurationMs('250ms')).toBe(250);
    expect(parseDurationMs(2)).toBe(2000);
    expect(parseDurationMs('5 minutes')).toBeUndefined();
  });

  it('parses sizes with binary units and refuses decimal ones', () => {
    expect(parseByteSize('64MiB')).toBe(64 << 20);
    expect(parseByteSize('16 GiB')).toBe(16 * 1024 ** 3);
    expect(parseByteSize('1.5KiB')).toBe(1536);
    expect(parseByteSize(4096)).toBe(4096);
    for (const bad of ['64MB', '1GB', '-1', 'lots', '', 1.5]) expect(parseByteSize(bad as string), String(bad)).toBeUndefined();
    expect(formatByteSize(64 << 20)).toBe('64 MiB');
    expect(formatByteSize(1536)).toBe('1.5 KiB');
    expect(formatByteSize(100)).toBe('100 bytes');
  });

  it('has image limits with safe defaults, each settable, and names a bad one', () => {
    expect(imageLimitsFromConfig(configFromObject({}))).toEqual(DEFAULT_IMAGE_LIMITS);
    const c = configFromObject({ image: { max_layer_size: '64MiB', max_image_size: 1 << 30, max_config_size: '1MiB', max_manifest_size: '512KiB', max_layers: 3, max_index_manifests: 2, max_layer_entries: 10 } });
    expect(imageLimitsFromConfig(c)).toEqual({
      maxLayerBytes: 64 << 20, maxImageBytes: 1 << 30, maxConfigBytes: 1 << 20, maxManifestBytes: 512 << 10,
      maxLayers: 3, maxIndexManifests: 2, maxLayerEntries: 10,
    });
    expect(() => configFromObject({ image: { max_layer_size: '64MB' } })).toThrow(/image.max_layer_size: "64MB" is not a size like "64MiB"/);
    expect(() => configFromObject({ image: { max_config_size: 0 } })).toThrow(/image.max_config_size/);
    expect(() => configFromObject({ image: { max_layers: 0 } })).toThrow(/image.max_layers/);
  });
});
