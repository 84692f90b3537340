/**
 * Converts the packaged TF.js face models to ONNX in the model cache (env PAIRGEN_CACHE, default
 * .cache/models) and prints what it made. Fast and silent about work when the cache is fresh.
 *   node --import tsx scripts/setup-models.ts [--force]
 */
import { isUserError } from '../src/errors.ts';
import { ensurePackagedModels } from '../src/identity/convert.ts';

const force = process.argv.includes('--force');
const started = Date.now();
try {
  const models = await ensurePackagedModels({
    force,
    onModel: ({ id, path, converted, bytes }) => {
      console.log(converted ? `converted ${id} → ${path} (${(bytes / 1e6).toFixed(1)} MB)` : `fresh     ${id}   ${path}`);
    },
  });
  console.log(`face models ready in ${models.cacheDir} (${Date.now() - started} ms)`);
} catch (e) {
  if (!isUserError(e)) throw e;
  console.error(`error: ${e.message}`);
  process.exit(2);
}
