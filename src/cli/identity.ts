import { extname } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { UserError } from '../errors.ts';
import type { FaceCrop } from '../identity/calibrate.ts';
import type { RgbImage } from '../types.ts';
import { log, progress } from '../util/log.ts';
import { action, collectSet } from './common.ts';
import { writeFileAtomic } from '../util/atomic.ts';

function farArg(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n >= 1) throw new InvalidArgumentError('must be a rate between 0 and 1, e.g. 1e-3');
  return n;
}

/** The images to calibrate on: every image file of a folder, or the source images of a Parquet shard. */
async function* readImages(input: string): AsyncGenerator<{ name: string; image: RgbImage }> {
  const { decodeImage, ImageSources } = await import('../image/index.ts');
  const sources = await ImageSources.open(input, { columns: ['source_image', 'image', 'edited_image'] });
  for await (const { name, label, input: encoded } of sources.all()) yield { name, image: await decodeImage(encoded, label) };
}

export function registerIdentity(program: Command): void {
  const identity = program.command('identity').description('calibrate the identity filter');
  identity.command('calibrate')
    .description('measure same- vs different-person similarity on your images and pick a threshold')
    .argument('<images>', 'a folder of images, or a Parquet shard (its source_image column)')
    .option('--target-far <rate>', 'false-accept rate the suggested threshold must meet', farArg, 1e-3)
    .option('-o, --out <plot.png>', 'draw the two score distributions and the ROC to this PNG')
    .option('--json', 'print the report as one JSON object on stdout')
    .option('-c, --config <pipeline.yaml>', 'take models and rules from a pipeline config\'s identity section')
    .option('--set <key.path=value>', 'override a config key (repeatable; needs --config)', collectSet)
    .addHelpText('after', `
Each face found becomes one identity. Same-person pairs: the face against flipped, rescaled, shifted,
brighter and darker views of it (each detected, aligned and embedded again). Different-person pairs:
every face against every other face and its views. Reports TPR at FAR 1e-2 and 1e-3, the EER, rank-1
identification of the views, and the threshold meeting --target-far. With n different-person pairs
the smallest FAR that can be measured is 1/n.`)
    .action(action(async (input: string, opts: { targetFar: number; out?: string; json?: boolean; config?: string; set?: string[] }) => {
      if (opts.out && extname(opts.out).toLowerCase() !== '.png') throw new UserError(`--out ${opts.out}: expected a .png file name`);
      const { identitySettings } = await import('./face-settings.ts');
      const { openDetector, openEmbedder } = await import('../identity/models.ts');
      const { calibrate, cropFaces, plotCalibration } = await import('../identity/calibrate.ts');
      const { identity: cfg, runtime } = identitySettings(opts.config, opts.set);
      const detector = await openDetector(cfg, runtime);
      try {
        const embedder = await openEmbedder(cfg, runtime);
        try {
          const crops: FaceCrop[] = [];
          for await (const { name, image } of readImages(input)) crops.push(...await cropFaces(name, image, detector, cfg.min_face_size));
          if (crops.length < 2) throw new UserError(`${input}: found ${crops.length} face${crops.length === 1 ? '' : 's'}; calibration needs at least 2 different people`);
          const bar = progress('calibrate', crops.length);
          const { report, same, different } = await calibrate(crops, detector, embedder, { minSize: cfg.min_face_size, targetFar: opts.targetFar, onProgress: (n) => bar.update(n) });
          bar.stop();
          if (opts.out) {
            const png = await plotCalibration(same, different, report);
            await writeFileAtomic(opts.out, png, { context: '--out' });
            log.info(`wrote ${opts.out}`);
          }
          if (opts.json) {
            process.stdout.write(JSON.stringify(report) + '\n');
            return;
          }
          const f = (v: number) => v.toFixed(4);
          const lines = [
            `faces ${report.faces}  same-person pairs ${report.samePairs}  different-person pairs ${report.differentPairs}  views without a face ${report.missedViews}`,
            `same person:      mean ${f(report.same.mean)}  min ${f(report.same.min)}`,
            `different people: mean ${f(report.different.mean)}  max ${f(report.different.max)}`,
            ...report.tprAtFar.map((p) => `TPR at FAR ${p.far}: ${f(p.tpr)}  (threshold ${f(p.threshold)})`),
            `EER ${f(report.eer)} at threshold ${f(report.eerThreshold)}`,
            `rank-1 identification ${f(report.rank1)}`,
            `threshold for FAR ${report.targetFar}: ${f(report.thresholdAtTargetFar)}  (set identity.threshold)`,
          ];
          process.stdout.write(lines.join('\n') + '\n');
        } finally {
          await embedder.close();
        }
      } finally {
        await detector.close();
      }
    }));
}
