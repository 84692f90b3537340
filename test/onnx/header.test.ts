/** The ONNX header reader (src/onnx/header.ts) against onnxruntime's own view of the fixture models. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readOnnxHeader } from '../../src/onnx/header.ts';
import { openSession } from '../../src/onnx/session.ts';
import { FIXTURES, tinySdExternal } from '../helpers/fixtures.ts';

test('the header reader gives the same input/output names, types and input shapes as an onnxruntime session', async () => {
  for (const model of ['tiny-sd/text_encoder', 'tiny-sd/unet', 'tiny-sd/vae_encoder', 'tiny-sd/vae_decoder', 'tiny-sd-ip2p/unet', 'tiny-sdxl/text_encoder_2', 'tiny-sdxl/unet', 'tiny-sd-fp16/unet', 'tiny-sd-external/unet']) {
    const path = model.startsWith('tiny-sd-external') ? join(tinySdExternal(), model.slice('tiny-sd-external/'.length), 'model.onnx') : join(FIXTURES, model, 'model.onnx');
    const header = readOnnxHeader(path);
    const session = await openSession(path);
    const pick = (io: readonly { name: string; type: string }[]) => io.map((m) => `${m.name}:${m.type}`);
    assert.deepEqual(pick(header.inputs), pick(session.inputMetadata.map((m) => ({ name: m.name, type: m.isTensor ? m.type : 'non-tensor' }))), model);
    assert.deepEqual(pick(header.outputs), pick(session.outputMetadata.map((m) => ({ name: m.name, type: m.isTensor ? m.type : 'non-tensor' }))), model);
    assert.deepEqual(header.inputs.map((i) => i.shape), session.inputMetadata.map((m) => (m.isTensor ? [...m.shape] : [])), model);
    assert.deepEqual(header.externalFiles, model.startsWith('tiny-sd-external') ? ['model.onnx_data'] : []);
    await session.release();
  }
});
