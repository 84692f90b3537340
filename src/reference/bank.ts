import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.ts';
import { decodeImage } from '../image/index.ts';
import type { RgbImage } from '../types.ts';

/**
 * The reference teacher's image bank: aligned face crops of the 22 people in @vladmandic/face-api's
 * demo photos (sample1..6.jpg), and for each edit of EDIT_NAMES the same crops edited with sharp.
 * On disk: bank.json and <bank>/<person>.png, where bank "source" holds the unedited crops.
 * This module reads a bank; crops.ts makes one.
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

export function photoDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'demo');
  } catch (e) {
    throw new UserError('the package @vladmandic/face-api (the demo face photos) is not installed; run `make setup`', { cause: e });
  }
}

/** 8-bit HWC → float CHW in [-1, 1]. */
export function toLatent(img: RgbImage): Float32Array {
  const plane = img.width * img.height;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = img.data[p * 3 + c] / 127.5 - 1;
  return out;
}

/** Read a bank built by buildBank (crops.ts). */
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
