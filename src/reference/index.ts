import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { DEFAULT_RUNTIME, type RuntimeConfig } from '../onnx/session.ts';
import { loadPromptSet } from '../prompts/index.ts';
import { expandRows } from '../prompts/expand.ts';
import type { ClipTokenizer } from '../text/clip-tokenizer.ts';
import { BANK_PHOTOS, loadBank, photoDir, SOURCE_BANK } from './bank.ts';
import { EDIT_NAMES } from './edits.ts';
import { buildBank } from './crops.ts';
import { writeReferenceFolder, type EditFailures } from './folder.ts';
import { categoryThreshold, scoreBank, type CategoryThreshold, type EditCalibration } from './calibrate.ts';
import { classifyText, type LabelledText } from './text.ts';

/**
 * The reference teacher: two diffusers-layout ONNX model folders built from a bank of face crops
 * (text-to-image for sources, InstructPix2Pix-style for edits), cached with a stamp.
 *   const ref = await ensureReferenceTeacher();   // builds once, then returns the cached folders
 *   // teacher: { model: ref.model, edit_model: ref.editModel, mode: instruct }
 */
export { precisionRecall, GroundTruth, GroundTruthTally, EditTruthTally, referenceLabeller, type EditMade, type EditTruth, type EditTruthResult, type PairTruth, type PrecisionRecall } from './truth.ts';
export type { EditFailures } from './folder.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Part of the cache stamp (with the source of this folder): bump to force a rebuild everywhere. */
export const REFERENCE_VERSION = '1';
/** Default image-prior strength of the instruct folder: ~85% of demo edits keep the source's person (docs/reference-teacher.md). */
export const DEFAULT_IMAGE_STRENGTH = 3;
/** Prior shares of failed edits of the instruct folder (docs/reference-teacher.md has what the demo's pairs get). */
export const DEFAULT_EDIT_FAILURES: EditFailures = { none: 0.04, wrong: 0.12 };
/** Share of demo pairs whose edit keeps the source's person, measured on the demo (docs/reference-teacher.md). */
export const EXPECTED_KEPT_SHARE = 0.85;
/** Prompt rows the text table is trained on (plus the set's eval rows). */
const TRAIN_ROWS = 2000;

export interface ReferenceOptions {
  /** Default: env PAIRGEN_CACHE/reference-teacher, else <repo>/.cache/reference-teacher. */
  cacheDir?: string;
  /** The prompt set whose texts the text encoder learns; default <repo>/prompts/demo.yaml. */
  promptSet?: string;
  imageStrength?: number;
  /** The instruct folder's failed edits; default DEFAULT_EDIT_FAILURES. */
  editFailures?: EditFailures;
  force?: boolean;
  runtime?: RuntimeConfig;
  onStep?: (message: string) => void;
}

export interface ReferenceTeacher {
  root: string;
  /** The text-to-image folder (teacher.model). */
  model: string;
  /** The instruct folder (teacher.edit_model). */
  editModel: string;
  bankDir: string;
  /** true when it was built now, false when the cache was fresh. */
  built: boolean;
  /** calibration.json: identity thresholds per prompt-set category, calibrated on the bank. */
  calibration: string;
}

function calibrationReport(scores: EditCalibration[], thresholds: CategoryThreshold[]) {
  const round = (x: number) => Number(x.toFixed(4));
  const stats = (xs: (number | null)[]) => {
    const found = xs.filter((x): x is number => x !== null);
    return { pairs: xs.length, no_face: xs.length - found.length, mean: round(found.reduce((a, b) => a + b, 0) / Math.max(1, found.length)), min: round(Math.min(...found)), max: round(Math.max(...found)) };
  };
  return {
    kept_share: EXPECTED_KEPT_SHARE,
    category_thresholds: Object.fromEntries(thresholds.map((t) => [t.category, t.threshold])),
    categories: thresholds.map((t) => ({ ...t, precision: round(t.precision), recall: round(t.recall) })),
    edits: scores.map((s) => ({ edit: s.edit, same_person: stats(s.same), different_people: stats(s.different) })),
  };
}

export function defaultReferenceDir(): string {
  return process.env.PAIRGEN_CACHE ? join(resolve(process.env.PAIRGEN_CACHE), 'reference-teacher') : join(repoRoot, '.cache', 'reference-teacher');
}

async function digest(parts: (string | Uint8Array)[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/**
 * Texts labelled with their bank: source prompts → 0, instructions and targets → their `edit`
 * attribute's bank; and which edits each category of the set uses.
 */
function labelledTexts(promptSet: string, banks: string[]): { texts: LabelledText[]; categories: Map<string, Set<string>> } {
  const set = loadPromptSet(promptSet);
  const out: LabelledText[] = [];
  const categories = new Map<string, Set<string>>();
  for (const row of expandRows(set, { count: TRAIN_ROWS, seed: 0 })) {
    const edit = row.attributes.edit;
    const k = banks.indexOf(edit);
    if (k < 1) {
      throw new UserError(
        `${promptSet}: category "${row.category}", instruction "${row.instruction}": attribute edit is ${edit === undefined ? 'missing' : JSON.stringify(edit)}; the reference teacher needs one of ${banks.slice(1).join(', ')}`,
      );
    }
    out.push({ text: row.source_prompt, label: 0 }, { text: row.instruction, label: k }, { text: row.target_prompt, label: k });
    if (!categories.has(row.category)) categories.set(row.category, new Set());
    categories.get(row.category)!.add(edit);
  }
  return { texts: out, categories };
}

/** Build (or reuse) the bank and both model folders. */
export async function ensureReferenceTeacher(options: ReferenceOptions = {}): Promise<ReferenceTeacher> {
  const root = resolve(options.cacheDir ?? defaultReferenceDir());
  const promptSet = resolve(options.promptSet ?? join(repoRoot, 'prompts', 'demo.yaml'));
  const strength = options.imageStrength ?? DEFAULT_IMAGE_STRENGTH;
  if (!(strength >= 0) || !Number.isFinite(strength)) throw new UserError(`image strength must be a number >= 0, got ${strength}`);
  const failures = options.editFailures ?? DEFAULT_EDIT_FAILURES;
  if (!(failures.none >= 0 && failures.wrong >= 0 && failures.none + failures.wrong < 1)) {
    throw new UserError(`edit failure shares must be >= 0 and add up to less than 1, got none ${failures.none}, wrong ${failures.wrong}`);
  }
  const say = options.onStep ?? (() => undefined);
  const paths = { root, model: join(root, 'text-to-image'), editModel: join(root, 'instruct'), bankDir: join(root, 'bank'), calibration: join(root, 'calibration.json') };
  let setBytes: Buffer;
  try {
    setBytes = await readFile(promptSet);
  } catch (e) {
    throw new UserError(`cannot read the prompt set ${promptSet}: ${(e as Error).message}`);
  }
  const photos = await Promise.all(BANK_PHOTOS.map((p) => readFile(join(photoDir(), p))));
  // The builder's own source is part of the stamp: a change to the bank, the graphs or the layout rebuilds.
  const here = dirname(fileURLToPath(import.meta.url));
  const code = await Promise.all((await readdir(here)).filter((f) => f.endsWith('.ts')).sort().map((f) => readFile(join(here, f))));
  const stamp = await digest([REFERENCE_VERSION, String(strength), JSON.stringify(failures), setBytes, ...photos, ...code]);
  const stampPath = join(root, 'stamp.json');
  if (!options.force && existsSync(stampPath)) {
    let old: { stamp?: string } = {};
    try {
      old = JSON.parse(await readFile(stampPath, 'utf8')) as { stamp?: string };
    } catch {
      // an unreadable stamp is a stale one
    }
    if (old.stamp === stamp) return { ...paths, built: false };
  }

  const { texts, categories } = labelledTexts(promptSet, [SOURCE_BANK, ...EDIT_NAMES]);

  // Build beside the cache and swap it in, so a crash never leaves a half-written teacher behind.
  const tmp = `${root}.tmp-${process.pid}`;
  const removeTmp = () => rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  try {
    await removeTmp();
    say('cutting face crops and making the edited banks');
    await buildBank(join(tmp, 'bank'), options.runtime ?? DEFAULT_RUNTIME);
    const bank = await loadBank(join(tmp, 'bank'));
    say(`writing the text-to-image folder (${bank.people.length} people x ${bank.banks.length} banks)`);
    await writeReferenceFolder(join(tmp, 'text-to-image'), { bank, bankDir: join(tmp, 'bank'), texts, imageStrength: null });
    say(`writing the instruct folder (image strength ${strength}, failed edits: none ${failures.none}, wrong ${failures.wrong})`);
    const { tokenizer, table } = await writeReferenceFolder(join(tmp, 'instruct'), { bank, bankDir: join(tmp, 'bank'), texts, imageStrength: strength, editFailures: failures });
    checkTexts(tokenizer, table, texts, bank.banks, promptSet);
    say('calibrating identity thresholds on the bank (packaged face models)');
    const runtime = options.runtime ?? DEFAULT_RUNTIME;
    const scores = await scoreBank(join(tmp, 'bank'), bank, runtime);
    const thresholds = [...categories].map(([category, edits]) => categoryThreshold(category, scores.filter((s) => edits.has(s.edit)), EXPECTED_KEPT_SHARE));
    await writeFile(join(tmp, 'calibration.json'), JSON.stringify(calibrationReport(scores, thresholds), null, 2) + '\n');
    await writeFile(join(tmp, 'stamp.json'), JSON.stringify({ stamp, version: REFERENCE_VERSION, image_strength: strength, edit_failures: failures, prompt_set: promptSet }, null, 2) + '\n');
    await swapIn(tmp, root, stamp);
  } catch (e) {
    await removeTmp();
    if (e instanceof UserError) throw e;
    if (['EACCES', 'EROFS', 'ENOTDIR', 'EEXIST', 'EPERM'].includes((e as NodeJS.ErrnoException).code ?? '')) {
      throw new UserError(`cannot write the reference teacher to ${root} (set PAIRGEN_CACHE to a writable folder): ${(e as Error).message}`);
    }
    throw e;
  }
  return { ...paths, built: true };
}

/**
 * Put the finished build `tmp` in place of `root`. Several processes may build at once (test files run
 * in parallel on a fresh clone): a folder another process has put in place with the same stamp is kept
 * and this build dropped, since a process may already be reading it (deleting it first had a test see
 * a half-removed teacher); a stale one is moved aside by one rename before this one is renamed in.
 */
export async function swapIn(tmp: string, root: string, stamp: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(tmp, root);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt >= 3) throw e;
    }
    let current: { stamp?: string } = {};
    try {
      current = JSON.parse(await readFile(join(root, 'stamp.json'), 'utf8')) as { stamp?: string };
    } catch {
      // no stamp: a stale or broken folder
    }
    if (current.stamp === stamp) {
      await rm(tmp, { recursive: true, force: true });
      return;
    }
    const old = `${root}.old-${process.pid}-${attempt}`;
    await rename(root, old).catch(() => undefined); // another process may have moved it already
    await rm(old, { recursive: true, force: true });
  }
}

/** Every training text must select its own bank, or the prompt set's edits cannot be told apart. */
function checkTexts(tokenizer: ClipTokenizer, table: Float32Array, texts: LabelledText[], banks: string[], promptSet: string): void {
  const wrong = texts.filter((t) => classifyText(tokenizer, table, banks.length, t.text) !== t.label);
  if (wrong.length) {
    const w = wrong[0];
    throw new UserError(`${promptSet}: the reference teacher's text encoder reads "${w.text}" as ${banks[classifyText(tokenizer, table, banks.length, w.text)]}, not ${banks[w.label]} (${wrong.length} texts misread); give that edit more distinctive instructions`);
  }
}
