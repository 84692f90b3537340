import { extname } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { UserError } from '../errors.ts';
import type { IdentityConfig } from '../identity/config.ts';
import type { RuntimeConfig } from '../onnx/session.ts';
import type { FaceDetection, RgbImage } from '../types.ts';
import { action, collectSet } from './common.ts';
import { writeFileAtomic } from '../util/atomic.ts';

interface CommonOpts { config?: string; set?: string[]; json?: boolean }

/** The code the face verbs run, loaded by their actions so that --help and usage errors do not load it. */
async function faceTools() {
  const [{ decodeImage }, { openDetector, openEmbedder }, { countableFaces, largestFace }, { cosine }, { identitySettings }] = await Promise.all([
    import('../image/index.ts'),
    import('../identity/models.ts'),
    import('../identity/scorer.ts'),
    import('../identity/embedder.ts'),
    import('./face-settings.ts'),
  ]);
  return { decodeImage, openDetector, openEmbedder, countableFaces, largestFace, cosine, identitySettings };
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

function faceJson(f: FaceDetection) {
  return { box: f.box.map((v) => round(v)), score: round(f.score, 4), keypoints: f.keypoints.map(([x, y]) => [round(x), round(y)]) };
}

function similarityArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < -1 || n > 1) throw new InvalidArgumentError('must be a number between -1 and 1');
  return n;
}

/** Boxes and keypoints drawn over the image, written atomically to `out` (PNG, JPEG or WebP by extension). */
async function annotate(img: RgbImage, faces: FaceDetection[], out: string): Promise<void> {
  const stroke = Math.max(2, Math.round(Math.max(img.width, img.height) / 400));
  const shapes = faces.map((f) => {
    const [x1, y1, x2, y2] = f.box;
    const dots = f.keypoints.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="${stroke * 1.5}" fill="#ff0"/>`).join('');
    return `<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="#0f0" stroke-width="${stroke}"/>${dots}` +
      `<text x="${x1}" y="${Math.max(12, y1 - stroke * 2)}" font-family="sans-serif" font-size="${stroke * 7}" fill="#0f0">${f.score.toFixed(2)}</text>`;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${img.width}" height="${img.height}">${shapes.join('')}</svg>`;
  const format = ({ '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp', '.png': 'png' } as const)[extname(out).toLowerCase()];
  if (!format) throw new UserError(`--annotate ${out}: expected a .png, .jpg or .webp file name`);
  const { default: sharp } = await import('sharp');
  const bytes = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .toFormat(format)
    .toBuffer();
  await writeFileAtomic(out, bytes, { context: '--annotate' });
}

function annotatePath(out: string, index: number, count: number): string {
  if (count === 1) return out;
  const ext = extname(out);
  return `${out.slice(0, out.length - ext.length)}-${index + 1}${ext}`;
}

export function registerFaces(program: Command): void {
  const faces = program.command('faces').description('detect, embed and compare faces with the identity stage\'s models');
  const common = (c: Command) => c
    .option('-c, --config <pipeline.yaml>', 'take models and rules from a pipeline config\'s identity section (default: the packaged models)')
    .option('--set <key.path=value>', 'override a config key (repeatable; needs --config)', collectSet);

  common(faces.command('detect')
    .description('find faces: box [x1,y1,x2,y2], score and keypoints in pixels of each image')
    .argument('<images...>', 'image files (JPEG, PNG, WebP, TIFF, GIF)')
    .option('--json', 'print {"images":[{"file","faces":[{"box","score","keypoints"}]}]} on stdout')
    .option('--annotate <out.png>', 'draw the faces over the image (several images: out-1.png, out-2.png, ...)'))
    .action(action(async (files: string[], opts: CommonOpts & { annotate?: string }) => {
      const { identitySettings, decodeImage, openDetector, countableFaces } = await faceTools();
      const { identity, runtime } = identitySettings(opts.config, opts.set);
      const images = await Promise.all(files.map((f) => decodeImage(f)));
      const detector = await openDetector(identity, runtime);
      const results: { file: string; faces: ReturnType<typeof faceJson>[] }[] = [];
      try {
        for (const [i, img] of images.entries()) {
          const found = countableFaces(await detector.detect(img), identity.min_face_size);
          results.push({ file: files[i], faces: found.map(faceJson) });
          if (opts.annotate) await annotate(img, found, annotatePath(opts.annotate, i, files.length));
        }
      } finally {
        await detector.close();
      }
      if (opts.json) process.stdout.write(JSON.stringify({ images: results }) + '\n');
      else for (const r of results) {
        process.stdout.write(`${r.file}: ${r.faces.length} face${r.faces.length === 1 ? '' : 's'}\n`);
        for (const f of r.faces) process.stdout.write(`  box ${f.box.join(',')} score ${f.score}\n`);
      }
    }));

  common(faces.command('embed')
    .description('embed the largest face of each image (L2-normalised; null when there is no face)')
    .argument('<images...>', 'image files')
    .option('--json', 'print {"images":[{"file","faces":N,"embedding":[...]|null}]} on stdout'))
    .action(action(async (files: string[], opts: CommonOpts) => {
      const { identitySettings, decodeImage } = await faceTools();
      const { identity, runtime } = identitySettings(opts.config, opts.set);
      const images = await Promise.all(files.map((f) => decodeImage(f)));
      const results = await embedLargest(images, identity, runtime);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ images: results.map((r, i) => ({ file: files[i], faces: r.faces, embedding: r.embedding ? Array.from(r.embedding, (v) => round(v, 6)) : null })) }) + '\n');
      } else {
        results.forEach((r, i) => process.stdout.write(`${files[i]}: ${r.faces} face${r.faces === 1 ? '' : 's'}${r.embedding ? `, ${r.embedding.length}-D embedding` : ', no embedding'}\n`));
      }
    }));

  common(faces.command('compare')
    .description('cosine similarity of the largest faces of two images, and the verdict at the threshold')
    .argument('<a>', 'first image')
    .argument('<b>', 'second image')
    .option('-t, --threshold <t>', 'similarity threshold (default: identity.threshold of --config, else 0.65)', similarityArg)
    .option('--json', 'print {"a","b","similarity","threshold","same"} on stdout'))
    .action(action(async (a: string, b: string, opts: CommonOpts & { threshold?: number }) => {
      const { identitySettings, decodeImage, cosine } = await faceTools();
      const { identity, runtime } = identitySettings(opts.config, opts.set);
      const threshold = opts.threshold ?? identity.threshold;
      const [ra, rb] = await embedLargest([await decodeImage(a), await decodeImage(b)], identity, runtime);
      const missing = [ra.embedding ? null : a, rb.embedding ? null : b].filter(Boolean);
      if (missing.length) throw new UserError(`no face found in ${missing.join(' and ')}`);
      const similarity = cosine(ra.embedding!, rb.embedding!);
      const same = similarity >= threshold;
      if (opts.json) process.stdout.write(JSON.stringify({ a, b, similarity: round(similarity, 6), threshold, same }) + '\n');
      else process.stdout.write(`similarity ${similarity.toFixed(4)}  threshold ${threshold}  → ${same ? 'same person' : 'different people'}\n`);
    }));
}

async function embedLargest(images: RgbImage[], identity: IdentityConfig, runtime: RuntimeConfig) {
  const { openDetector, openEmbedder, countableFaces, largestFace } = await faceTools();
  const detector = await openDetector(identity, runtime);
  try {
    const embedder = await openEmbedder(identity, runtime);
    try {
      const out: { faces: number; embedding: Float32Array | null }[] = [];
      for (const img of images) {
        const found = countableFaces(await detector.detect(img), identity.min_face_size);
        const face = largestFace(found);
        out.push({ faces: found.length, embedding: face ? (await embedder.embed([embedder.align(img, face)]))[0] : null });
      }
      return out;
    } finally {
      await embedder.close();
    }
  } finally {
    await detector.close();
  }
}
