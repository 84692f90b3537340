/**
 * `pairgen run` with each pair mode on the tiny fixture teachers, through the real CLI: the shards
 * record the model digest (the one in run.json), the scheduler and its whole config, the seed of every
 * pair and every sampler setting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import sharp from 'sharp';
import { pairSeed } from '../../src/candidates/seeds.ts';
import { BIN, FIXTURES, tempDir, writeConfig } from '../helpers/run-fixture.ts';

async function portraits(dir: string): Promise<string> {
  const folder = join(dir, 'faces');
  mkdirSync(folder);
  for (const [i, color] of [[0, '#a0522d'], [1, '#deb887']] as const) {
    await sharp({ create: { width: 64, height: 64, channels: 3, background: color } })
      .composite([{ input: Buffer.from(`<svg width="64" height="64"><circle cx="32" cy="30" r="18" fill="#f1c27d"/></svg>`) }])
      .png()
      .toFile(join(folder, `face-${i}.png`));
  }
  return folder;
}

const MODES: [string, (dir: string) => Promise<string>][] = [
  ['prompt-pair', async () => `  mode: prompt-pair\n  scheduler: DDIMScheduler\n`],
  ['prompt-pair with SDEdit', async () => `  mode: prompt-pair\n  strength: 0.6\n`],
  ['instruct', async () => `  mode: instruct\n  edit_model: ${join(FIXTURES, 'tiny-sd-ip2p')}\n  image_guidance_scale: 1.5\n`],
  ['img2img', async (dir) => `  mode: img2img\n  edit_model: ${join(FIXTURES, 'tiny-sd-ip2p')}\n  sources:\n    path: ${await portraits(dir)}\n`],
];

for (const [mode, teacherKeys] of MODES) {
  test(`pairgen run, ${mode}: shards record the model digest, scheduler config, seed and sampler settings`, async () => {
    const dir = tempDir();
    const config = writeConfig(dir, { pairs: 2, shardSize: 2, name: mode.replace(/\W+/g, '-') });
    // The fixture config's teacher section gets the mode's keys and a short schedule.
    const text = readFileSync(config, 'utf8').replace(/(teacher:\n  model: .*\n)/, `$1${await teacherKeys(dir)}  steps: 3\n  guidance_scale: 2\n`);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(config, text);
    const out = join(dir, 'run');
    const r = spawnSync(process.execPath, [BIN, 'run', config, '--out', out], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);

    const plan = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    const db = await (await DuckDBInstance.create(':memory:')).connect();
    const rows = (await db.runAndReadAll(`select pair_id, prompt_id, sample_index, seed, teacher, teacher_digest, sampler, width, height from read_parquet('${out}/data/*.parquet') order by "index"`)).getRowObjectsJS();
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.equal(row.teacher_digest, plan.models.teacher.digest);
      assert.match(String(row.teacher), /^diffusers:tiny-sd/);
      assert.equal(Number(row.seed), pairSeed(plan.seed, String(row.prompt_id), Number(row.sample_index)));
      const sampler = JSON.parse(String(row.sampler));
      assert.equal(sampler.mode, plan.config.teacher.mode);
      assert.equal(sampler.steps, 3);
      assert.equal(sampler.guidance_scale, 2);
      assert.equal(typeof sampler.scheduler, 'string');
      assert.equal(sampler.scheduler_config._class_name, sampler.scheduler);
      assert.ok(Array.isArray(sampler.scheduler_config.trained_betas) || typeof sampler.scheduler_config.num_train_timesteps === 'number');
      if (mode === 'prompt-pair') assert.equal(sampler.scheduler, 'DDIMScheduler');
      if (mode.includes('SDEdit')) assert.equal(sampler.strength, 0.6);
      assert.deepEqual([Number(row.width), Number(row.height)], [sampler.width, sampler.height]);
    }
  });
}
