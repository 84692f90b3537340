/**
 * The test fixtures kept in the repository (test/fixtures/diffusers: tiny real ONNX exports of SD 1.x,
 * InstructPix2Pix and SDXL teachers with diffusers' own outputs, see its README.md), and what tests
 * derive from them instead of storing a second copy.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const FIXTURES = fileURLToPath(new URL('../fixtures/diffusers', import.meta.url));
const CACHE = fileURLToPath(new URL('../../.cache/fixtures', import.meta.url));

/**
 * tiny-sd with every model's weights moved to an external `model.onnx_data` file, as full-size exports
 * (over 2 GB) always are: the same weights, so it must render exactly like tiny-sd. Built once into
 * .cache/fixtures/, in a folder named by the digest of tiny-sd's models (a changed fixture gets a new
 * copy), and reused.
 */
let external: string | null = null;

export function tinySdExternal(): string {
  return (external ??= buildTinySdExternal());
}

function buildTinySdExternal(): string {
  const source = join(FIXTURES, 'tiny-sd');
  const parts = readdirSync(source).filter((part) => existsSync(join(source, part, 'model.onnx'))).sort();
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part).update(readFileSync(join(source, part, 'model.onnx')));
  const out = join(CACHE, `tiny-sd-external-${digest.digest('hex').slice(0, 12)}`);
  if (existsSync(join(out, '.complete'))) return out;
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(CACHE, { recursive: true });
  cpSync(source, tmp, { recursive: true });
  for (const part of parts) moveWeightsOut(join(tmp, part, 'model.onnx'), 'model.onnx_data');
  writeFileSync(join(tmp, '.complete'), '');
  try {
    renameSync(tmp, out);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another test process built it first
  }
  return out;
}

/** Rewrite an ONNX file so each initializer's raw bytes live in `dataName` beside it (ONNX external data). */
function moveWeightsOut(file: string, dataName: string): void {
  const model = onnx.ModelProto.decode(readFileSync(file));
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph!.initializer!) {
    const raw = t.rawData;
    if (!raw || raw.length === 0) continue;
    const entry = (key: string, value: string) => onnx.StringStringEntryProto.create({ key, value });
    t.externalData = [entry('location', dataName), entry('offset', String(offset)), entry('length', String(raw.length))];
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.rawData = new Uint8Array(0);
    chunks.push(raw);
    offset += raw.length;
  }
  writeFileSync(join(file, '..', dataName), Buffer.concat(chunks));
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
}
