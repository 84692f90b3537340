import { createRequire } from 'node:module';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../errors.ts';
import { DEFAULT_IDENTITY } from '../identity/config.ts';
import { openDetector } from '../identity/models.ts';
import { decodeImage } from '../identity/image.ts';
import { ARCFACE_TEMPLATE_112, similarityTransform, warpAffine } from '../identity/align.ts';
import { countableFaces } from '../identity/scorer.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { RgbImage } from '../types.ts';
import { applyEdit, EDIT_NAMES } from './edits.ts';

/**
 * The reference teacher's image bank: aligned face crops of the 22 people in @vladmandic/face-api's
 * demo photos (sample1..6.jpg), and for each edit of EDIT_NAMES the same crops edited with sharp.
 * On disk: bank.json and <bank>/<person>.png, where bank "source" holds the unedited crops.
 */
export const BANK_SIZE = 128;
export const SOURCE_BANK = 'source';
/** The photos the bank is cut from, in order. */
export const BANK_PHOTOS = ['sample1.jpg', 'sample2.jpg', 'sample3.jpg', 'sample4.jpg', 'sample5.jpg', 'sample6.jpg'];

export interface BankPerson {
  /** e.g. "sample2.jpg#3": photo and face number (left to right). */
  name: string;
  /** The detected face box in the photo, pixels. */
  box: [number, number, number, number];
}

export interface BankManifest {
  size: number;
  /** Bank names: "source" first, then the edits. */
  banks: string[];
  people: BankPerson[];
}

export interface Bank extends BankManifest {
  /** images[b][p]: bank b, person p, as float CHW in [-1, 1] (the reference teacher's latent space). */
  images: Float32Array[][];
}

/** Eyes, nose tip, mouth centre (ArcFace's 112-px template) mapped into the crop, zoomed out so the whole head shows. */
const ZOOM = 0.62;
const CROP_TEMPLATE: [number, number][] = [
  ARCFACE_TEMPLATE_112[0],
  ARCFACE_TEMPLATE_112[1],
  ARCFACE_TEMPLATE_112[2],
  [(ARCFACE_TEMPLATE_112[3][0] + ARCFACE_TEMPLATE_112[4][0]) / 2, (ARCFACE_TEMPLATE_112[3][1] + ARCFACE_TEMPLATE_112[4][1]) / 2],
].map(([x, y]) => [BANK_SIZE / 2 + ((x * BANK_SIZE) / 112 - BANK_SIZE / 2) * ZOOM, BANK_SIZE / 2 + ((y * BANK_SIZE) / 112 - BANK_SIZE / 2) * ZOOM + 4]);

export function photoDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
  } catch (e) {
    throw new UserError('the package @vladmandic/face-api (the demo face photos) is not installed; run `make setup`', { cause: e });
  }
}

/** Cut the aligned face crops from the demo photos with the identity stage's packaged detector. */
async function cutFaces(runtime: RuntimeConfig): Promise<{ person: BankPerson; crop: RgbImage }[]> {
  const detector = await openDetector(DEFAULT_IDENTITY, runtime);
  const out: { person: BankPerson; crop: RgbImage }[] = [];
  try {
    for (const photo of BANK_PHOTOS) {
      const img = await decodeImage(join(photoDir(), photo));
      const faces = countableFaces(await detector.detect(img), DEFAULT_IDENTITY.min_face_size).sort((a, b) => a.box[0] - b.box[0]);
      for (const [i, face] of faces.entries()) {
        const k = face.keypoints;
        const m = similarityTransform([k[0], k[1], k[2], k[3]], CROP_TEMPLATE);
        const warped = warpAffine(img, m, BANK_SIZE, BANK_SIZE);
        const crop = { width: BANK_SIZE, height: BANK_SIZE, data: Uint8Array.from(warped.data, (v) => Math.max(0, Math.min(255, Math.round(v)))) };
        const box = face.box.map((v) => Math.round(v)) as BankPerson['box'];
        out.push({ person: { name: `${photo}#${i + 1}`, box }, crop });
      }
    }
  } finally {
    await detector.close();
  }
  return out;
}

/** Build the bank into `dir` (bank.json + PNGs); returns its manifest. */
export async function buildBank(dir: string, runtime: RuntimeConfig): Promise<BankManifest> {
  const faces = await cutFaces(runtime);
  if (faces.length === 0) throw new UserError(`no faces found in ${photoDir()}/${BANK_PHOTOS.join(', ')}`);
  const banks = [SOURCE_BANK, ...EDIT_NAMES];
  for (const bank of banks) {
    await mkdir(join(dir, bank), { recursive: true });
    for (const [p, { crop }] of faces.entries()) {
      const img = bank === SOURCE_BANK ? crop : await applyEdit(bank as (typeof EDIT_NAMES)[number], crop);
      const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer();
      await writeFile(join(dir, bank, `${String(p).padStart(2, '0')}.png`), png);
    }
  }
  const manifest: BankManifest = { size: BANK_SIZE, banks, people: faces.map((f) => f.person) };
  await writeFile(join(dir, 'bank.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

/** 8-bit HWC → float CHW in [-1, 1]. */
export function toLatent(img: RgbImage): Float32Array {
  const plane = img.width * img.height;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = img.data[p * 3 + c] / 127.5 - 1;
  return out;
}

/** Read a bank built by buildBank. */
export async function loadBank(dir: string): Promise<Bank> {
  let manifest: BankManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'bank.json'), 'utf8')) as BankManifest;
  } catch (e) {
    throw new UserError(`cannot read the reference bank ${join(dir, 'bank.json')}: ${(e as Error).message} (run \`node --import tsx scripts/setup-reference.ts\`)`);
  }
  const images: Float32Array[][] = [];
  for (const bank of manifest.banks) {
    const row: Float32Array[] = [];
    for (let p = 0; p < manifest.people.length; p++) {
      const img = await decodeImage(join(dir, bank, `${String(p).padStart(2, '0')}.png`));
      if (img.width !== manifest.size || img.height !== manifest.size) throw new UserError(`${join(dir, bank)}: image ${p} is ${img.width}x${img.height}, expected ${manifest.size}x${manifest.size}`);
      row.push(toLatent(img));
    }
    images.push(row);
  }
  return { ...manifest, images };
}
