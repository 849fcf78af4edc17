// Image verbs: images, inspecti, rmi, pull, image import.
import { resolve as resolvePath } from 'node:path';
import { CliError } from '../cli-error.js';
import type { Context } from '../context.js';
import { formatData, formatTable, humanBytes, print, shortId, type OutputFormat } from '../output.js';

interface CriImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: string;
  pinned: boolean;
}

/** "host/name:tag" -> [name, tag]; the tag is after the last ':' that follows the last '/'. */
function splitTag(ref: string): [string, string] {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, '<none>'];
}

export async function listImages(ctx: Context, filter: string | undefined, opts: { quiet?: boolean; noTrunc?: boolean; digests?: boolean }, format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const { images } = (await cri.image.ListImages(filter ? { filter: { image: { image: filter } } } : {}, ctx.call)) as { images: CriImage[] };
  if (opts.quiet) {
    print(images.map((i) => `${i.id}\n`).join(''));
    return;
  }
  if (format !== 'table') {
    print(formatData({ images }, format));
    return;
  }
  const rows: string[][] = [];
  for (const img of images) {
    const names = img.repoTags.length > 0 ? img.repoTags.map(splitTag) : img.repoDigests.map((d) => [d.split('@')[0]!, '<none>'] as [string, string]);
    if (names.length === 0) names.push(['<none>', '<none>']);
    for (const [name, tag] of names) {
      const digest = img.repoDigests.find((d) => d.startsWith(`${name}@`))?.split('@')[1] ?? '<none>';
      rows.push([name, tag, ...(opts.digests ? [shortId(digest, opts.noTrunc)] : []), shortId(img.id, opts.noTrunc), humanBytes(img.size)]);
    }
  }
  print(formatTable(['IMAGE', 'TAG', ...(opts.digests ? ['DIGEST'] : []), 'IMAGE ID', 'SIZE'], rows));
}

/** The image an argument names: a reference, a full id, or an id prefix (as short as crictl's). */
export async function resolveImage(ctx: Context, text: string): Promise<CriImage | undefined> {
  const cri = await ctx.cri();
  const hex = text.replace(/^sha256:/, '');
  if (/^[0-9a-f]{1,64}$/.test(hex)) {
    const { images } = (await cri.image.ListImages({}, ctx.call)) as { images: CriImage[] };
    const matches = images.filter((i) => i.id.replace(/^sha256:/, '').startsWith(hex));
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) throw new CliError(`"${text}" is the start of ${matches.length} image ids: give more of the id.`);
  }
  const { image } = await cri.image.ImageStatus({ image: { image: text } }, ctx.call);
  return image ?? undefined;
}

export async function inspectImages(ctx: Context, refs: string[], format: OutputFormat): Promise<void> {
  const cri = await ctx.cri();
  const out: unknown[] = [];
  for (const ref of refs) {
    const img = await resolveImage(ctx, ref);
    if (!img) throw new CliError(`no image matches "${ref}": see "crib images", or pull it with "crib pull ${ref}".`);
    const res = await cri.image.ImageStatus({ image: { image: img.id }, verbose: true }, ctx.call);
    const info: Record<string, unknown> = {};
    for (const [k, v] of Object.entries((res.info ?? {}) as Record<string, string>)) {
      try {
        info[k] = JSON.parse(v);
      } catch {
        info[k] = v;
      }
    }
    out.push({ status: res.image, info });
  }
  const value = out.length === 1 ? out[0] : out;
  if (format === 'table') {
    print(formatTable(['IMAGE ID', 'TAGS', 'SIZE', 'PINNED'], out.map((o) => {
      const s = (o as { status: CriImage }).status;
      return [shortId(s.id), s.repoTags.join(','), humanBytes(s.size), String(s.pinned)];
    })));
    return;
  }
  print(formatData(value, format));
}

export async function removeImages(ctx: Context, refs: string[], opts: { all?: boolean }): Promise<void> {
  const cri = await ctx.cri();
  let targets: CriImage[];
  if (opts.all) {
    if (refs.length > 0) throw new CliError('give either image names or --all, not both.');
    targets = ((await cri.image.ListImages({}, ctx.call)) as { images: CriImage[] }).images;
  } else {
    if (refs.length === 0) throw new CliError('name the images to remove (see "crib images"), or use --all.');
    targets = [];
    for (const ref of refs) {
      const img = await resolveImage(ctx, ref);
      if (!img) throw new CliError(`no image matches "${ref}": see "crib images" for the images on this node.`);
      targets.push(img);
    }
  }
  for (const img of targets) {
    await cri.image.RemoveImage({ image: { image: img.id } }, ctx.call);
    for (const name of img.repoTags.length > 0 ? img.repoTags : [img.id]) print(`Deleted: ${name}\n`);
  }
}

/** "user:password" for --creds; the password may itself hold ':'. */
function parseCreds(creds: string): { username: string; password: string } {
  const i = creds.indexOf(':');
  if (i <= 0) throw new CliError('--creds must be USERNAME:PASSWORD.');
  return { username: creds.slice(0, i), password: creds.slice(i + 1) };
}

export async function pull(ctx: Context, image: string, opts: { creds?: string; auth?: string; quiet?: boolean }): Promise<void> {
  const { pullWithProgress } = await import('../../client/admin-client.js');
  const { plainDisplay, pullSummary, terminalDisplay } = await import('../pull-display.js');
  const auth = opts.creds ? parseCreds(opts.creds) : opts.auth ? { auth: opts.auth } : undefined;
  const display = opts.quiet ? undefined : process.stdout.isTTY ? terminalDisplay(process.stdout) : plainDisplay((l) => print(`${l}\n`));
  let last: Parameters<NonNullable<typeof display>['update']>[0] | undefined;
  let imageRef: string;
  try {
    imageRef = await pullWithProgress(ctx.address, { image, auth }, (p) => {
      last = p;
      display?.update(p);
    });
  } finally {
    display?.stop();
  }
  print(opts.quiet ? `${imageRef}\n` : `${pullSummary(last, imageRef)}\n`);
}

export async function importImage(ctx: Context, archive: string): Promise<void> {
  const { importImageViaDaemon } = await import('../../client/admin-client.js');
  const res = await importImageViaDaemon(ctx.address, resolvePath(archive));
  for (const img of res.images) print(`${img.id} ${img.repoTags.join(' ')}\n`);
}

export async function exportImage(ctx: Context, image: string, archive: string): Promise<void> {
  const { exportImageViaDaemon } = await import('../../client/admin-client.js');
  const found = await resolveImage(ctx, image);
  if (!found) throw new CliError(`no image matches "${image}": see "crib images".`);
  const res = await exportImageViaDaemon(ctx.address, found.id, resolvePath(archive));
  print(`${res.id} ${res.repoTags.join(' ')}\n`);
}
