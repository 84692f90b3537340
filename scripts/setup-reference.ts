/**
 * Builds the reference teacher (face bank, text-to-image and instruct model folders) into the cache
 * (env PAIRGEN_CACHE/reference-teacher, default .cache/reference-teacher) and prints where it is.
 * Fast when the cache is fresh (a stamp over the prompt set, the photos and the settings).
 *   node --import tsx scripts/setup-reference.ts [--force] [--prompts prompts/demo.yaml] [--image-strength 3] [--edit-none 0.04] [--edit-wrong 0.12]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isUserError, UserError } from '../src/errors.ts';
import { DEFAULT_EDIT_FAILURES, DEFAULT_IMAGE_STRENGTH, ensureReferenceTeacher } from '../src/reference/index.ts';

const USAGE = `usage: node --import tsx scripts/setup-reference.ts [--force] [--prompts <set.yaml>] [--image-strength <s>] [--edit-none <p>] [--edit-wrong <p>]
  Builds the reference teacher (face bank, text-to-image and instruct model folders, identity calibration)
  into $PAIRGEN_CACHE/reference-teacher (default .cache/reference-teacher); reuses it when fresh.
  --force               rebuild even when the cache is fresh
  --prompts <set.yaml>  prompt set whose texts the text encoder learns (default prompts/demo.yaml)
  --image-strength <s>  instruct prior strength, >= 0 (default ${DEFAULT_IMAGE_STRENGTH}); see docs/reference-teacher.md
  --edit-none <p>       instruct prior share of edits that end on the unedited face (default ${DEFAULT_EDIT_FAILURES.none})
  --edit-wrong <p>      instruct prior share of edits that end on another edit (default ${DEFAULT_EDIT_FAILURES.wrong})`;
const started = Date.now();
try {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        force: { type: 'boolean', default: false },
        prompts: { type: 'string' },
        'image-strength': { type: 'string', default: String(DEFAULT_IMAGE_STRENGTH) },
        'edit-none': { type: 'string', default: String(DEFAULT_EDIT_FAILURES.none) },
        'edit-wrong': { type: 'string', default: String(DEFAULT_EDIT_FAILURES.wrong) },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    throw new UserError(`${(e as Error).message} (see --help)`);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const strength = Number(values['image-strength']);
  if (!Number.isFinite(strength) || strength < 0) throw new UserError(`--image-strength must be a number >= 0, got ${values['image-strength']}`);
  const share = (flag: 'edit-none' | 'edit-wrong') => {
    const v = Number(values[flag]);
    if (values[flag]!.trim() === '' || !(v >= 0 && v < 1)) throw new UserError(`--${flag} must be a number in [0, 1), got ${values[flag]}`);
    return v;
  };
  const editFailures = { none: share('edit-none'), wrong: share('edit-wrong') };
  const ref = await ensureReferenceTeacher({ force: values.force, promptSet: values.prompts, imageStrength: strength, editFailures, onStep: (m) => console.log(m) });
  console.log(`${ref.built ? 'built' : 'fresh'} reference teacher in ${ref.root} (${Date.now() - started} ms)`);
  console.log(`  teacher.model:      ${ref.model}`);
  console.log(`  teacher.edit_model: ${ref.editModel}`);
  const calibration = JSON.parse(readFileSync(ref.calibration, 'utf8')) as { categories: { category: string; threshold: number; precision: number; recall: number }[] };
  console.log(`identity thresholds calibrated on the bank (${ref.calibration}):`);
  for (const c of calibration.categories) console.log(`  ${c.category}: ${c.threshold} (expected precision ${c.precision.toFixed(3)}, recall ${c.recall.toFixed(3)})`);
} catch (e) {
  if (!isUserError(e)) throw e;
  console.error(`error: ${e.message}`);
  process.exit(2);
}
