import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../errors.ts';
import { ARCFACE_TEMPLATE_112, similarityTransform, warpAffine } from '../identity/align.ts';
import { DEFAULT_IDENTITY } from '../identity/config.ts';
import { decodeImage } from '../image/index.ts';
import { openDetector } from '../identity/models.ts';
import { countableFaces } from '../identity/scorer.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { RgbImage } from '../types.ts';
import { BANK_PHOTOS, BANK_SIZE, photoDir, SOURCE_BANK, type BankManifest, type BankPerson } from './bank.ts';
import { applyEdit, EDIT_NAMES } from './edits.ts';

/**
 * Making the bank: faces found by the identity stage's packaged detector in the demo photos, aligned
 * by their eyes, nose and mouth into BANK_SIZE crops, then edited with sharp.
 */

/** Eyes, nose tip, mouth centre (ArcFace's 112-px template) mapped into the crop, zoomed out so the whole head shows. */
const ZOOM = 0.62;
const CROP_TEMPLATE: [number, number][] = [
  ARCFACE_TEMPLATE_112[0],
  ARCFACE_TEMPLATE_112[1],
  ARCFACE_TEMPLATE_112[2],
  [(ARCFACE_TEMPLATE_112[3][0] + ARCFACE_TEMPLATE_112[4][0]) / 2, (ARCFACE_TEMPLATE_112[3][1] + ARCFACE_TEMPLATE_112[4][1]) / 2],
].map(([x, y]) => [BANK_SIZE / 2 + ((x * BANK_SIZE) / 112 - BANK_SIZE / 2) * ZOOM, BANK_SIZE / 2 + ((y * BANK_SIZE) / 112 - BANK_SIZE / 2) * ZOOM + 4]);

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

