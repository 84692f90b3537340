// A worker's memory: the runtime.max_memory budget → teacher batch choice, and the peak RSS a real
// worker process reports in its log, its shard timings and `pairgen status`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/errors.ts';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { withDefaults } from '../../src/teacher/config.ts';
import { createTeacher, teacherModelFiles } from '../../src/teacher/index.ts';
import { batchForBudget, estimatedPeak, estimateTeacherMemory, parseMemorySize, unetRowBytes, type MemoryEstimate } from '../../src/teacher/memory.ts';
import type { CandidateSpec, GeneratedPair } from '../../src/types.ts';
import { BIN, FIXTURES, tempDir, writeConfig } from '../helpers/run-fixture.ts';

const MB = 2 ** 20;
const GB = 2 ** 30;
const TINY = join(FIXTURES, 'tiny-sd');

test('runtime.max_memory sizes: MB / MiB / GB / GiB (powers of two); anything else names the key', () => {
  assert.equal(parseMemorySize('12GB'), 12 * GB);
  assert.equal(parseMemorySize('12 GiB'), 12 * GB);
  assert.equal(parseMemorySize('9000MB'), 9000 * MB);
  assert.equal(parseMemorySize('1.5GB'), 1.5 * GB);
  for (const bad of ['12', '12 gb', 'lots', '-1GB', '0MB']) {
    assert.throws(() => parseMemorySize(bad), (e: Error) => e instanceof UserError && /^runtime\.max_memory: /.test(e.message), bad);
  }
});

test('the budget picks the largest batch whose estimated peak fits, at most teacher.max_batch', () => {
  const e: MemoryEstimate = { base: 300 * MB, weights: 4 * GB, unetRow: 1 * GB, rowsPerCandidate: 4, vae: 2 * GB };
  // peak(k) = 0.3 + 4 + max(4k, 2) GB
  assert.equal(estimatedPeak(e, 1), 300 * MB + 8 * GB);
  assert.equal(batchForBudget(e, 9 * GB, 8), 1);
  assert.equal(batchForBudget(e, 13 * GB, 8), 2);
  assert.equal(batchForBudget(e, 12.2 * GB, 8), 1, 'just under batch 2');
  assert.equal(batchForBudget(e, 100 * GB, 8), 8, 'capped by max_batch');
  assert.equal(batchForBudget(e, 100 * GB, 3), 3);
  assert.throws(
    () => batchForBudget(e, 6 * GB, 8),
    (err: Error) => err instanceof UserError && /^runtime\.max_memory: 6\.0 GB is less than the teacher's estimated peak for one candidate per call, 8\.3 GB \(weights 4\.0 GB, UNet activations 4\.0 GB, VAE 2\.0 GB/.test(err.message),
  );
  // The VAE runs one image at a time: its share does not grow with the batch.
  const vaeHeavy = { ...e, unetRow: 0.1 * GB, vae: 3 * GB };
  assert.equal(estimatedPeak(vaeHeavy, 1), estimatedPeak(vaeHeavy, 5));
});

test('the estimate: model file sizes as weights, UNet rows per candidate by mode and guidance, attention growing with the size', () => {
  const config = withDefaults({ model: TINY, height: 64, width: 64 });
  const e = estimateTeacherMemory(config, { height: 64, width: 64 });
  const onnx = teacherModelFiles(config).filter((f) => f.endsWith('.onnx'));
  assert.equal(e.weights, onnx.reduce((a, f) => a + statSync(f).size, 0));
  assert.equal(e.rowsPerCandidate, 4, 'prompt-pair: source and edit in one call, each with guidance');
  assert.equal(estimateTeacherMemory({ ...config, guidance_scale: 1 }, { height: 64, width: 64 }).rowsPerCandidate, 2);
  assert.equal(estimateTeacherMemory({ ...config, strength: 0.5 }, { height: 64, width: 64 }).rowsPerCandidate, 2, 'SDEdit: source, then edit');
  const ip2p = withDefaults({ model: TINY, edit_model: join(FIXTURES, 'tiny-sd-ip2p'), mode: 'instruct' });
  assert.equal(estimateTeacherMemory(ip2p, { height: 64, width: 64 }).rowsPerCandidate, 3);
  // SD 1.5 at 512 px: 8 heads over 64 x 64 latents; attention scores grow with the square of the tokens.
  const sd15 = { down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'], block_out_channels: [320, 640, 1280, 1280], attention_head_dim: 8 };
  const at512 = unetRowBytes(sd15, 64, 64);
  const at256 = unetRowBytes(sd15, 32, 32);
  assert.ok(at512 > 8 * 4096 * 4096 * 4, 'at least one copy of the scores');
  assert.ok(at512 / at256 > 8 && at512 / at256 < 16, `${at512 / at256}`);
  // SDXL-style: no attention at the first level.
  const xl = { ...sd15, down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'], attention_head_dim: [5, 10, 20] };
  assert.ok(unetRowBytes(xl, 128, 128) < unetRowBytes(sd15, 128, 128));
});

function spec(index: number, seed: number): CandidateSpec {
  return {
    pairId: `p${index}`, index, seed, promptId: 'edit-1', sampleIndex: index, category: 'style',
    sourcePrompt: 'a portrait photo of a woman with curly red hair', instruction: 'turn her into a marble statue',
    targetPrompt: 'a marble statue of a woman with curly red hair', identityThreshold: null, attributes: {},
  };
}
const digest = (pairs: GeneratedPair[]) => {
  const h = createHash('sha256');
  for (const p of pairs) h.update(p.source.data).update(p.edited.data);
  return h.digest('hex');
};

test('a budget that allows one candidate per call: batch 1, recorded in the settings, the same bytes as batch 4', async () => {
  const config = withDefaults({ model: TINY, steps: 3, max_batch: 4 });
  const e = estimateTeacherMemory(config, { height: 64, width: 64 });
  const budget = `${Math.ceil(estimatedPeak(e, 1) / MB)}MB`;
  assert.ok(parseMemorySize(budget) < estimatedPeak(e, 2));
  const specs = [spec(0, 11), spec(1, 12), spec(2, 13)];
  const free = await createTeacher(config, DEFAULT_RUNTIME);
  const tight = await createTeacher(config, { ...DEFAULT_RUNTIME, max_memory: budget } as typeof DEFAULT_RUNTIME);
  try {
    assert.equal(tight.info.settings.batch, 1);
    assert.equal(free.info.settings.batch, undefined, 'without a budget the settings stay as before');
    assert.equal(digest(await tight.generate(specs)), digest(await free.generate(specs)));
  } finally {
    await free.close();
    await tight.close();
  }
  await assert.rejects(createTeacher(config, { ...DEFAULT_RUNTIME, max_memory: '100MB' } as typeof DEFAULT_RUNTIME), (e: Error) => e instanceof UserError && /^runtime\.max_memory: 0\.1 GB is less than/.test(e.message));
});

test('pairgen work logs each shard\'s peak RSS, writes it to the shard timings, and status shows the highest', () => {
  const dir = tempDir();
  const config = writeConfig(dir, { pairs: 4, shardSize: 2, extra: 'runtime:\n  max_memory: 4GB\n' });
  writeFileSync(config, readFileSync(config, 'utf8').replace(/(teacher:\n  model: .*\n)/, '$1  steps: 2\n'));
  const out = join(dir, 'run');
  const plan = spawnSync(process.execPath, [BIN, 'plan', config, '--out', out], { encoding: 'utf8' });
  assert.equal(plan.status, 0, plan.stderr);
  const work = spawnSync(process.execPath, [BIN, '--log-format', 'json', 'work', out], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(work.status, 0, work.stderr);
  const lines = work.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const loaded = lines.find((l) => /^teacher loaded/.test(l.msg));
  assert.ok(loaded, work.stderr);
  assert.deepEqual([loaded.cpu_mem_arena, loaded.mem_pattern, loaded.batch], [false, true, 4]);
  const shards = lines.filter((l) => /^shard-\d+ committed$/.test(l.msg));
  assert.equal(shards.length, 2);
  const timings = [0, 1].map((s) => JSON.parse(readFileSync(join(out, `markers/shard-${String(s).padStart(5, '0')}.timings.json`), 'utf8')));
  for (const [i, l] of shards.entries()) {
    // More than the node runtime alone, less than the machine.
    assert.ok(l.peak_rss_mb > 50 && l.peak_rss_mb < 8192, JSON.stringify(l));
    assert.equal(timings[i].peak_rss_mb, l.peak_rss_mb);
  }
  const status = spawnSync(process.execPath, [BIN, 'status', out, '--json'], { encoding: 'utf8' });
  assert.equal(status.status, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  assert.equal(s.peak_rss_mb, Math.max(...timings.map((t) => t.peak_rss_mb)));
  // The rate counts seconds only, not the memory figure.
  const seconds = timings.reduce((a, t) => a + t.sample_s + t.score_s + t.encode_s + t.write_s, 0);
  assert.ok(Math.abs(s.pairs_per_worker_second - 4 / seconds) < 1e-9);
  const text = spawnSync(process.execPath, [BIN, 'status', out], { encoding: 'utf8' });
  assert.match(text.stdout, /^memory: peak \d+\.\d\d GB resident in one worker process/m);
});

test('a budget below one candidate: plan refuses a malformed size; work stops with exit 2 before any shard', () => {
  const dir = tempDir();
  const bad = writeConfig(dir, { pairs: 2, shardSize: 2, name: 'bad', extra: 'runtime:\n  max_memory: lots\n' });
  const r = spawnSync(process.execPath, [BIN, 'plan', bad, '--out', join(dir, 'bad-run')], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /runtime\.max_memory.*expected a size such as 12GB/);
  assert.equal(existsSync(join(dir, 'bad-run', 'run.json')), false);

  const small = writeConfig(dir, { pairs: 2, shardSize: 2, name: 'small', extra: 'runtime:\n  max_memory: 200MB\n' });
  const out = join(dir, 'small-run');
  assert.equal(spawnSync(process.execPath, [BIN, 'plan', small, '--out', out], { encoding: 'utf8' }).status, 0);
  const w = spawnSync(process.execPath, [BIN, 'work', out], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(w.status, 2, w.stderr);
  assert.match(w.stderr, /runtime\.max_memory: 0\.2 GB is less than the teacher's estimated peak for one candidate per call/);
  assert.equal(existsSync(join(out, 'markers/shard-00000.json')), false);
});
