// createTeacher in every pair mode on the fixture models: sizes, determinism, provenance, the worker thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { UserError } from '../../src/errors.ts';
import { DEFAULT_RUNTIME } from '../../src/onnx/session.ts';
import { withDefaults, type TeacherConfig } from '../../src/teacher/config.ts';
import { createTeacher, teacherModelFiles } from '../../src/teacher/index.ts';
import type { CandidateSpec, GeneratedPair } from '../../src/types.ts';

import { FIXTURES as FIX } from '../helpers/fixtures.ts';
const tmp = mkdtempSync(join(tmpdir(), 'pairgen-teacher-modes-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function spec(index: number, seed: number, over: Partial<CandidateSpec> = {}): CandidateSpec {
  return {
    pairId: `p${index}`,
    index,
    seed,
    promptId: 'edit-1',
    sampleIndex: index,
    category: 'style',
    sourcePrompt: 'a portrait photo of a woman with curly red hair',
    instruction: 'turn her into a marble statue',
    targetPrompt: 'a marble statue of a woman with curly red hair',
    identityThreshold: null,
    attributes: {},
    ...over,
  };
}
const SPECS = [spec(0, 11), spec(1, 2 ** 40 + 7)];

const digest = (pairs: GeneratedPair[]) => createHash('sha256').update(pairs.flatMap((p) => [p.source.data, p.edited.data]).map((d) => Buffer.from(d)).reduce((a, b) => Buffer.concat([a, b]))).digest('hex');

function differ(a: Uint8Array, b: Uint8Array): boolean {
  return a.some((v, i) => v !== b[i]);
}

async function check(config: TeacherConfig, fresh = false): Promise<GeneratedPair[]> {
  const teacher = await createTeacher(config, DEFAULT_RUNTIME);
  try {
    const pairs = await teacher.generate(SPECS);
    assert.equal(pairs.length, 2);
    for (const p of pairs) {
      for (const img of [p.source, p.edited]) {
        assert.equal(img.width, 64);
        assert.equal(img.height, 64);
        assert.equal(img.data.length, 64 * 64 * 3);
      }
      assert.ok(differ(p.source.data, p.edited.data), 'the edit changes the image');
    }
    assert.ok(differ(pairs[0].source.data, pairs[1].source.data), 'two seeds, two sources');
    // Same specs → same bytes, in this teacher (and in a fresh one).
    assert.equal(digest(await teacher.generate(SPECS)), digest(pairs));
    assert.match(teacher.info.modelDigest, /^[0-9a-f]{64}$/);
    assert.equal(teacher.info.settings.steps, config.steps);
    if (fresh) {
      const again = await createTeacher(config, DEFAULT_RUNTIME);
      try {
        assert.equal(digest(await again.generate(SPECS)), digest(pairs));
        assert.equal(again.info.modelDigest, teacher.info.modelDigest);
      } finally {
        await again.close();
      }
    }
    return pairs;
  } finally {
    await teacher.close();
  }
}

const base = { model: join(FIX, 'tiny-sd'), steps: 2, guidance_scale: 4 } as const;

test('prompt-pair: source and edit from the same latents, batched in one call', async () => {
  const pairs = await check(withDefaults({ ...base, mode: 'prompt-pair' }), true);
  // The same prompt on both sides gives the same image: the edit really shares the source's latents.
  const teacher = await createTeacher(withDefaults({ ...base, mode: 'prompt-pair' }), DEFAULT_RUNTIME);
  try {
    const [same] = await teacher.generate([spec(0, 11, { targetPrompt: 'a portrait photo of a woman with curly red hair' })]);
    assert.deepEqual(same.source.data, same.edited.data);
    assert.deepEqual(same.source.data, pairs[0].source.data);
    assert.equal(teacher.info.name, 'diffusers:tiny-sd');
  } finally {
    await teacher.close();
  }
});

test('prompt-pair with strength: the edit is an SDEdit of the source', async () => {
  await check(withDefaults({ ...base, mode: 'prompt-pair', strength: 0.6, scheduler: 'DDIMScheduler' }));
});

test('instruct: sources from tiny-sd, edits by the InstructPix2Pix model', async () => {
  const config = withDefaults({ ...base, mode: 'instruct', edit_model: join(FIX, 'tiny-sd-ip2p'), negative_prompt: 'blurry' });
  await check(config, true);
  const files = teacherModelFiles(config);
  assert.ok(files.some((f) => f.endsWith('tiny-sd-ip2p/vae_encoder/model.onnx')));
  assert.ok(!files.some((f) => f.endsWith('tiny-sd/vae_encoder/model.onnx')), 'only what is used is digested');
});

async function portraits(): Promise<string[]> {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const raw = Buffer.alloc(80 * 96 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * (k + 3) + 17 * k) % 256;
    const path = join(tmp, 'faces', `face-${k}.png`);
    mkdirSync(join(tmp, 'faces'), { recursive: true });
    await sharp(raw, { raw: { width: 80, height: 96, channels: 3 } }).png().toFile(path);
    out.push(path);
  }
  return out;
}

test('img2img over a folder of portraits, edited by InstructPix2Pix', async () => {
  await portraits();
  const pairs = await check(withDefaults({ ...base, mode: 'img2img', edit_model: join(FIX, 'tiny-sd-ip2p'), sources: { path: join(tmp, 'faces'), column: 'image' } }));
  // The source is the real portrait (resized to 64x64), not a generated image.
  const expected = await sharp(join(tmp, 'faces', 'face-1.png')).resize(64, 64, { fit: 'cover' }).removeAlpha().raw().toBuffer();
  assert.deepEqual(Buffer.from(pairs[1].source.data), expected);
  assert.equal(pairs[1].extra?.source_portrait, 1);
});

test('img2img over a Parquet table, SDEdit with the target prompt', async () => {
  const files = await portraits();
  const { readFileSync } = await import('node:fs');
  const table = join(tmp, 'faces.parquet');
  writeFileSync(table, Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'jpeg', data: files.map((f) => new Uint8Array(readFileSync(f))), type: 'BYTE_ARRAY' }] })));
  await check(withDefaults({ ...base, mode: 'img2img', strength: 0.5, sources: { path: table, column: 'jpeg' } }));
});

test('sampling runs in a worker thread: the main event loop keeps turning', async () => {
  const teacher = await createTeacher(withDefaults({ ...base, steps: 8, mode: 'prompt-pair' }), DEFAULT_RUNTIME);
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const start = Date.now();
    await teacher.generate(SPECS);
    clearInterval(timer);
    const ms = Date.now() - start;
    // A UNet on the main thread would block it for the whole call; here timers fire throughout.
    assert.ok(ticks >= Math.min(20, ms / 10), `${ticks} ticks in ${ms} ms`);
  } finally {
    await teacher.close();
  }
});

test('bad teacher configs are user errors that name the key', async () => {
  const fails = async (config: TeacherConfig, pattern: RegExp) => {
    await assert.rejects(createTeacher(config, DEFAULT_RUNTIME), (e: unknown) => e instanceof UserError && pattern.test(e.message));
  };
  await fails(withDefaults({ ...base, mode: 'instruct' }), /teacher\.edit_model: mode "instruct" needs an InstructPix2Pix model/);
  await fails(withDefaults({ ...base, mode: 'img2img', strength: 0.5 }), /teacher\.sources/);
  await fails(withDefaults({ ...base, mode: 'img2img', sources: { path: join(tmp, 'nope'), column: 'image' }, strength: 0.5 }), /teacher\.sources\.path: .* does not exist/);
  await fails(withDefaults({ ...base, scheduler: 'NoSuchScheduler' }), /unknown scheduler class "NoSuchScheduler"/);
  await fails(withDefaults({ ...base, model: join(tmp, 'missing') }), /lacks model_index\.json/);
  await fails(withDefaults({ ...base, height: 63 }), /teacher\.height: 63 is not a multiple/);
  await fails(withDefaults({ ...base, model: join(FIX, 'tiny-sd-ip2p') }), /teacher\.model: .* is an InstructPix2Pix model/);
});
