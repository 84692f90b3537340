/**
 * Demo pairs from the reference teacher with their ground truth and every scorer's numbers, one JSON
 * line per pair: what the edit-fidelity rules of pipelines/demo.yaml were chosen from
 * (docs/reference-teacher.md, "Failed edits").
 *   node --import tsx scripts/measure-edit-fidelity.ts [--pairs 240] [--seed 2025] [--out pairs.jsonl]
 * Candidates are drawn as the demo draws them (prompts/demo.yaml, the run seed, sample 0 of each row);
 * the teacher and identity settings are pipelines/demo.yaml's.
 */
import { createWriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pairId, pairSeed } from '../src/candidates/seeds.ts';
import { DEFAULT_IDENTITY } from '../src/identity/config.ts';
import { createIdentityScorer } from '../src/identity/index.ts';
import { DEFAULT_RUNTIME } from '../src/onnx/session.ts';
import { loadPromptSet } from '../src/prompts/index.ts';
import { expandRows } from '../src/prompts/expand.ts';
import { ensureReferenceTeacher, referenceLabeller } from '../src/reference/index.ts';
import { createScorers, DEFAULT_SCORERS, scorePair } from '../src/scorers/index.ts';
import { withDefaults } from '../src/teacher/config.ts';
import { createTeacher } from '../src/teacher/index.ts';
import type { CandidateSpec } from '../src/types.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { pairs: { type: 'string', default: '240' }, seed: { type: 'string', default: '2025' }, out: { type: 'string', default: 'edit-fidelity.jsonl' } } });
const count = Number(values.pairs);
const seed = Number(values.seed);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || seed < 0) {
  console.error(`error: --pairs must be an integer >= 1 and --seed an integer >= 0, got ${values.pairs} and ${values.seed}`);
  process.exit(2);
}

const ref = await ensureReferenceTeacher({ onStep: (m) => console.error(m) });
const set = loadPromptSet(join(root, 'prompts', 'demo.yaml'));
const rows = [...expandRows(set, { count, seed })].filter((r) => r.prompt_split === 'train');
const specs: CandidateSpec[] = rows.map((r, index) => ({
  pairId: pairId(seed, r.prompt_id, 0), index, seed: pairSeed(seed, r.prompt_id, 0), promptId: r.prompt_id, sampleIndex: 0,
  category: r.category, sourcePrompt: r.source_prompt, instruction: r.instruction, targetPrompt: r.target_prompt,
  identityThreshold: r.identity_threshold, attributes: r.attributes,
}));

const config = withDefaults({ model: ref.model, edit_model: ref.editModel, mode: 'instruct', steps: 20, guidance_scale: 1, max_batch: 8 });
const teacher = await createTeacher(config, DEFAULT_RUNTIME, { labeller: referenceLabeller(config) });
const identity = await createIdentityScorer({ ...DEFAULT_IDENTITY, threshold: 0.6, category_thresholds: { color_grade: 0.71, style: 0.44, lighting: 0.67 } }, DEFAULT_RUNTIME);
const scorers = await createScorers(DEFAULT_SCORERS, DEFAULT_RUNTIME);
const out = createWriteStream(values.out);
try {
  for (let i = 0; i < specs.length; i += 8) {
    const batch = specs.slice(i, i + 8);
    const pairs = await teacher.generate(batch);
    for (const [j, pair] of pairs.entries()) {
      const spec = batch[j];
      const faces = await identity.score(pair.source, pair.edited, spec);
      const { scores } = await scorePair(scorers, { source: pair.source, edited: pair.edited, faces, instruction: spec.instruction, category: spec.category });
      out.write(JSON.stringify({ pair_id: spec.pairId, category: spec.category, ...pair.extra, 'identity.similarity': faces.similarity, face_problem: faces.faceProblem, ...scores }) + '\n');
    }
    console.error(`${Math.min(i + 8, specs.length)}/${specs.length}`);
  }
} finally {
  out.end();
  await teacher.close();
  await identity.close();
  await scorers.close();
}
