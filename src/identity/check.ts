import { existsSync, statSync } from 'node:fs';
import { isUserError } from '../errors.ts';
import type { RuntimeConfig } from '../onnx/index.ts';
import type { IdentityConfig } from './config.ts';
import { requireModel } from './models.ts';
import { createIdentityScorer } from './scorer.ts';

export interface IdentityCheck {
  /** Everything that would stop the identity stage or that a run would silently ignore. */
  problems: string[];
  /** One line describing the stage, when it is disabled or its models open. */
  summary: string | null;
  /** A model file is missing: the config's notes on getting the models then help. */
  missing: boolean;
}

/**
 * `pairgen check` of the identity section. `categories` are the prompt set's (null when it did not
 * load): a per-category threshold for a category the set does not have is a typo a run would silently
 * ignore. The user's ONNX files must be named and exist; then the detector and embedder are opened as a
 * run opens them (the packaged ones converted into the cache if needed; the models are small, and their
 * own checks say what is wrong with one). `openModels` false skips that last step, for a caller that
 * opens the same scorer right after (work).
 */
export async function checkIdentity(id: IdentityConfig, runtime: RuntimeConfig, categories: string[] | null, openModels = true): Promise<IdentityCheck> {
  if (!id.enabled) return { problems: [], summary: 'identity: disabled (every pair is kept)', missing: false };
  const problems: string[] = [];
  for (const c of Object.keys(id.category_thresholds)) {
    if (categories && !categories.includes(c)) problems.push(`identity.category_thresholds.${c}: the prompt set has no category "${c}" (it has: ${categories.join(', ')})`);
  }
  let missing = false;
  let modelsNamed = true;
  for (const [section, kind] of [['detector', 'scrfd'], ['embedder', 'arcface']] as const) {
    if (id[section].kind !== kind) continue;
    try {
      const path = requireModel(id[section].model, section, kind);
      if (!existsSync(path)) {
        problems.push(`identity.${section}.model: ${path} does not exist`);
        missing = true;
        modelsNamed = false;
      } else if (statSync(path).isDirectory()) {
        problems.push(`identity.${section}.model: ${path} is a folder, expected an .onnx file`);
        modelsNamed = false;
      }
    } catch (e) {
      if (!isUserError(e)) throw e;
      problems.push(e.message);
      modelsNamed = false;
    }
  }
  if (!modelsNamed) return { problems, summary: null, missing };
  if (!openModels) return { problems, summary: `identity: threshold ${id.threshold} (models not opened)`, missing };
  try {
    const scorer = await createIdentityScorer(id, runtime);
    await scorer.close();
    const perCategory = Object.keys(id.category_thresholds).length ? ` (per category: ${JSON.stringify(id.category_thresholds)})` : '';
    return { problems, summary: `identity: ${scorer.info.name}, threshold ${id.threshold}${perCategory}`, missing };
  } catch (e) {
    if (!isUserError(e)) throw e;
    problems.push(`identity: ${e.message}`);
    return { problems, summary: null, missing };
  }
}
