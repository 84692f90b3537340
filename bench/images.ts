/**
 * Image encoding benchmark: bytes per pair and encode time of the demo's images under each setting,
 * side by side on the same pixels.
 *
 *   node --import tsx bench/images.ts [--pairs 60]
 *
 * Runs the demo pipeline (reference teacher) with PNG output into a temp folder, decodes the stored
 * pairs (PNG is lossless, so these are the exact pixels the teacher made) and encodes them again with:
 * PNG without adaptive filtering (what pairgen wrote before), PNG as pairgen writes it now (adaptive
 * filtering, zlib level 6), PNG at level 9, lossless WebP and JPEG at the default quality. Writes
 * bench/results/images.json and images.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetReadObjects } from 'hyparquet';
import sharp from 'sharp';
import { DEFAULT_QUALITY, encodeImage, PNG_COMPRESSION_LEVEL } from '../src/image/index.ts';
import { ensureReferenceTeacher } from '../src/reference/index.ts';
import type { RgbImage } from '../src/types.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const PAIRS = arg('pairs', 60);
const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-bench-images-'));
const run = join(tmp, 'run');

const ref = await ensureReferenceTeacher();
execFileSync(process.execPath, [
  join(here, '../bin/pairgen.js'), 'run', join(here, '../pipelines/demo.yaml'), '--out', run, '--pairs', String(PAIRS),
  '--set', `teacher.model=${ref.model}`, '--set', `teacher.edit_model=${ref.editModel}`, '--set', 'output.image_format=png',
], { stdio: ['ignore', 'ignore', 'inherit'] });

const images: RgbImage[] = [];
for (const f of readdirSync(join(run, 'data'))) {
  const b = readFileSync(join(run, 'data', f));
  const rows = await parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer, columns: ['source_image', 'edited_image'], utf8: false });
  for (const r of rows) {
    for (const cell of [r.source_image, r.edited_image] as { bytes: Uint8Array }[]) {
      const { data, info } = await sharp(cell.bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      images.push({ width: info.width, height: info.height, data: new Uint8Array(data) });
    }
  }
}
rmSync(tmp, { recursive: true, force: true });

const settings: [string, (img: RgbImage) => Promise<Uint8Array>][] = [
  [`PNG, no filtering, level ${PNG_COMPRESSION_LEVEL} (before)`, async (img) => new Uint8Array(await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png({ compressionLevel: PNG_COMPRESSION_LEVEL }).toBuffer())],
  [`PNG, adaptive filtering, level ${PNG_COMPRESSION_LEVEL} (pairgen now)`, (img) => encodeImage(img, { format: 'png' })],
  ['PNG, adaptive filtering, level 9', async (img) => new Uint8Array(await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png({ compressionLevel: 9, adaptiveFiltering: true, palette: false }).toBuffer())],
  ['WebP lossless (output.lossless: true)', (img) => encodeImage(img, { format: 'webp', lossless: true })],
  [`JPEG q${DEFAULT_QUALITY} 4:4:4 (lossy, for scale)`, (img) => encodeImage(img, { format: 'jpeg' })],
];
const pairs = images.length / 2;
const rows = [];
for (const [name, encode] of settings) {
  let bytes = 0;
  const t0 = performance.now();
  for (const img of images) bytes += (await encode(img)).length;
  rows.push({ setting: name, bytes_per_pair: Math.round(bytes / pairs), ms_per_image: Number(((performance.now() - t0) / images.length).toFixed(2)) });
}
const before = rows[0].bytes_per_pair;
const result = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version, note: 'shared 2-core machine; encode times are noisy, sizes are exact' },
  pairs,
  size: `${images[0].width}x${images[0].height}`,
  settings: rows.map((r) => ({ ...r, vs_before: `${(100 * (r.bytes_per_pair / before - 1)).toFixed(1)}%` })),
};
writeFileSync(join(here, 'results/images.json'), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(here, 'results/images.md'), [
  `# Image encoding: bytes per pair of the demo (${pairs} accepted pairs, ${result.size})`, '',
  '| setting | bytes per pair | vs before | ms per image |', '| --- | --- | --- | --- |',
  ...result.settings.map((r) => `| ${r.setting} | ${r.bytes_per_pair} | ${r.vs_before} | ${r.ms_per_image} |`), '',
].join('\n'));
console.log(JSON.stringify(result, null, 2));
