// ImageService RPCs: validate the wire input, call the image domain, shape the CRI messages.
import type { ImageServiceDefinition } from '../gen/runtime/v1/ImageService.js';
import type { Image } from '../gen/runtime/v1/Image.js';
import type { ImageSpec__Output } from '../gen/runtime/v1/ImageSpec.js';
import { InvalidArgumentError } from '../errors.js';
import type { ImageService, ImageView } from '../image/image-service.js';
import { encodedOncePerState } from './listed-messages.js';
import type { CriValidator } from './validate-cri.js';
import { sendInBatches, type ServiceHandlers } from './rpc.js';
import { encodeBeforeAnswer } from './status-prewarm.js';


function requiredImage(spec: ImageSpec__Output | null | undefined, rpc: string, validate: CriValidator): string {
  validate.imageReference(rpc, spec);
  const image = spec?.image?.trim() ?? '';
  if (image === '') throw new InvalidArgumentError(`${rpc}: image.image must name an image (reference, digest or id)`);
  return image;
}

/** containerd's rule: a numeric image USER is a uid, anything else a user name. */
function userOf(user: string): Pick<Image, 'uid' | 'username'> {
  const name = user.split(':')[0] ?? '';
  if (name === '') return {};
  return /^\d+$/.test(name) ? { uid: { value: name } } : { username: name };
}

/**
 * ImageSpec.runtime_handler (pull per RuntimeClass): every handler of crib runs images from the
 * one snapshotter on the node's platform, so an image pulled for one is there for all. The handler
 * asked about must exist (the CRI: an unknown one is rejected) and is echoed in the spec, as
 * containerd answers, so the caller can tell which handler the answer is for.
 */
function runtimeHandlerOf(rpc: string, spec: ImageSpec__Output | null | undefined, handlerNames: () => string[]): string {
  const handler = spec?.runtimeHandler ?? '';
  if (handler !== '' && !handlerNames().includes(handler)) {
    throw new InvalidArgumentError(`${rpc}: image.runtimeHandler "${handler}" is not configured (have: ${handlerNames().join(', ')})`);
  }
  return handler;
}

export function toCriImage(view: ImageView, runtimeHandler = ''): Image {
  return {
    id: view.id,
    repoTags: view.repoTags,
    repoDigests: view.repoDigests,
    // CRI requires size > 0; an image with no layers still has a config blob.
    size: String(Math.max(1, view.size)),
    ...userOf(view.user),
    spec: { image: view.id, annotations: view.annotations, runtimeHandler },
    pinned: view.pinned,
  };
}

/**
 * The view's CRI Image for `runtimeHandler`, encoded once per view (server/listed-messages.ts):
 * a view never changes (ImageService.view). One cache per handler asked about; only configured
 * handlers get this far (runtimeHandlerOf).
 */
const imageEncodedFor = new Map<string, (view: ImageView) => Image>();
function encodedCriImage(view: ImageView, runtimeHandler: string): Image {
  let encoded = imageEncodedFor.get(runtimeHandler);
  if (!encoded) {
    encoded = encodedOncePerState('Image', () => '', (v: ImageView) => toCriImage(v, runtimeHandler));
    imageEncodedFor.set(runtimeHandler, encoded);
  }
  return encoded(view);
}

export function imageServiceHandlers(images: ImageService, validate: CriValidator, handlerNames: () => string[]): ServiceHandlers<ImageServiceDefinition> {
  const filterOf = (rpc: string, filter: { image?: ImageSpec__Output | null } | null | undefined): string | undefined => {
    validate.imageReference(rpc, filter?.image);
    return filter?.image?.image?.trim() || undefined;
  };

  return {
    ListImages: async (req) => {
      const handler = runtimeHandlerOf('ListImages', req.filter?.image, handlerNames);
      return { images: (await images.list(filterOf('ListImages', req.filter))).map((v) => encodedCriImage(v, handler)) };
    },

    StreamImages: async (req, _ctx, send) => {
      const handler = runtimeHandlerOf('StreamImages', req.filter?.image, handlerNames);
      const all = (await images.list(filterOf('StreamImages', req.filter))).map((v) => encodedCriImage(v, handler));
      sendInBatches(all, send, (batch) => ({ images: batch }));
    },

    ImageStatus: async (req) => {
      const ref = requiredImage(req.image, 'ImageStatus', validate);
      const handler = runtimeHandlerOf('ImageStatus', req.image, handlerNames);
      const view = await images.status(ref);
      if (!view) return { info: {} };
      const info: Record<string, string> = {};
      if (req.verbose) {
        info.info = JSON.stringify({
          imageSpec: view.config,
          manifestDigest: view.manifestDigest,
          chainId: view.chainId,
          layers: view.layers,
        });
      }
      return { image: encodedCriImage(view, handler), info };
    },

    PullImage: async (req) => {
      const ref = requiredImage(req.image, 'PullImage', validate);
      const handler = runtimeHandlerOf('PullImage', req.image, handlerNames);
      // Not cancelled with the call: a pull shared with kubelet's retry must go on.
      const view = await images.pull(ref, req.auth ?? undefined);
      // kubelet's ImageStatus follows at once (server/status-prewarm.ts).
      encodeBeforeAnswer(() => encodedCriImage(view, handler));
      return { imageRef: view.id };
    },

    RemoveImage: async (req) => {
      const ref = requiredImage(req.image, 'RemoveImage', validate);
      await images.remove(ref);
      return {};
    },

    ImageFsInfo: async () => {
      const usage = await images.fsInfo();
      const ts = String(BigInt(Date.now()) * 1_000_000n);
      const fs = (u: { mountpoint: string; bytes: number; inodes: number }) => ({
        timestamp: ts,
        fsId: { mountpoint: u.mountpoint },
        usedBytes: { value: String(u.bytes) },
        inodesUsed: { value: String(u.inodes) },
      });
      return { imageFilesystems: [fs(usage.images)], containerFilesystems: [fs(usage.containers)] };
    },
  };
}
