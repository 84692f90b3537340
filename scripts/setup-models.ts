/**
 * Converts the packaged TF.js face models and the scorer models to ONNX in the model cache (env PAIRGEN_CACHE, default
 * .cache/models) and prints what it made. Fast and silent about work when the cache is fresh.
 *   node --import tsx scripts/setup-models.ts [--force]
 */
import { isUserError } from '../src/errors.ts';
import { ensurePackagedModels } from '../src/identity/convert.ts';
import { ensureScorerModels } from '../src/scorers/models.ts';

const force = process.argv.includes('--force');
const started = Date.now();
try {
  const options = {
    force,
    onModel: ({ id, path, converted, bytes }: { id: string; path: string; converted: boolean; bytes: number }) => {
      console.log(converted ? `converted ${id} → ${path} (${(bytes / 1e6).toFixed(1)} MB)` : `fresh     ${id}   ${path}`);
    },
  };
  const models = await ensurePackagedModels(options);
  await ensureScorerModels(options);
  console.log(`face and scorer models ready in ${models.cacheDir} (${Date.now() - started} ms)`);
} catch (e) {
  if (!isUserError(e)) throw e;
  console.error(`error: ${e.message}`);
  process.exit(2);
}
