import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPipelineConfig } from '../../src/config/index.ts';
import { renderConfigDocs } from '../../scripts/config-docs.ts';
import { REPO, tempDir } from '../helpers/run-fixture.ts';

function configFile(text: string, name = 'p.yaml'): string {
  const file = join(tempDir(), name);
  writeFileSync(file, text);
  return file;
}

const MINIMAL = 'prompts:\n  set: prompts.yaml\nteacher:\n  model: models/sd\n';

test('defaults fill every section; paths resolve against the config folder; name comes from the file', () => {
  const file = configFile(MINIMAL, 'my-run.yaml');
  const { config } = loadPipelineConfig(file);
  assert.equal(config.name, 'my-run');
  assert.equal(config.pairs, 100);
  assert.equal(config.runtime.intra_op_threads, 1);
  assert.deepEqual(config.runtime.execution_providers, ['cpu']);
  assert.equal(config.output.image_format, 'jpeg');
  assert.equal(config.identity.enabled, true);
  assert.equal(config.prompts.set, join(file, '..', 'prompts.yaml'));
  assert.equal(config.teacher.model, join(file, '..', 'models/sd'));
});

test('JSON configs load too', () => {
  const file = configFile(JSON.stringify({ prompts: { set: '/p.yaml' }, teacher: { model: '/m' }, pairs: 5 }), 'p.json');
  assert.equal(loadPipelineConfig(file).config.pairs, 5);
});

test('--set overrides parse YAML values and create sections', () => {
  const file = configFile(MINIMAL);
  const { config } = loadPipelineConfig(file, ['pairs=12', 'identity.threshold=0.5', 'runtime.execution_providers=[cuda, cpu]', 'output.image_format=png']);
  assert.equal(config.pairs, 12);
  assert.equal(config.identity.threshold, 0.5);
  assert.deepEqual(config.runtime.execution_providers, ['cuda', 'cpu']);
  assert.equal(config.output.image_format, 'png');
});

const bad: [string, string, RegExp][] = [
  ['malformed YAML', 'prompts:\n  set: [unclosed\nteacher: {}\n', /p\.yaml:\d+:\d+: not valid YAML\/JSON/],
  ['duplicate key', MINIMAL + 'pairs: 1\npairs: 2\n', /p\.yaml:\d+:\d+: not valid YAML\/JSON: .*[Mm]ap keys must be unique/],
  ['unknown top-level key', MINIMAL + 'pears: 3\n', /p\.yaml:5:1: pears: unknown key; expected one of: name, seed, pairs/],
  ['unknown nested key', MINIMAL + 'output:\n  formatt: png\n', /p\.yaml:6:3: output\.formatt: unknown key; expected one of: image_format/],
  ['wrong type', MINIMAL + 'pairs: many\n', /p\.yaml:5:1: pairs: expected integer, got string "many"/],
  ['bad enum', MINIMAL + 'output:\n  image_format: gif\n', /output\.image_format: expected one of "jpeg", "png", "webp", got "gif"/],
  ['out of range', MINIMAL + 'pairs: 0\n', /pairs: must be >= 1, got number 0/],
  ['missing required section', 'prompts:\n  set: p.yaml\n', /p\.yaml: teacher: required key is missing/],
  ['a list at the top', '- a\n- b\n', /expected a mapping of keys at the top level, got a list/],
  ['.inf', MINIMAL + 'identity:\n  threshold: .inf\n', /p\.yaml:6:3: identity\.threshold: expected a finite number, got \.inf$/],
  ['.nan', MINIMAL.replace('model: models/sd', 'model: models/sd\n  guidance_scale: .nan'), /p\.yaml:5:3: teacher\.guidance_scale: expected a finite number, got \.nan$/],
  ['a __proto__ key', MINIMAL + '__proto__:\n  polluted: 1\n', /p\.yaml:5:1: "__proto__" cannot be a key/],
  ['a constructor key in a free-form mapping', MINIMAL + 'identity:\n  category_thresholds:\n    constructor: 0.5\n', /p\.yaml:7:5: "constructor" cannot be a key/],
  ['an alias bomb', MINIMAL + 'x: &x [a, a, a, a, a, a, a, a, a, a]\ny: &y [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\nz: [*y, *y, *y, *y, *y, *y, *y, *y, *y, *y]\n', /p\.yaml: its aliases \(\*name\) expand to too many values/],
  ['not UTF-8', MINIMAL + '# caf\u00e9\n', /p\.yaml: not valid UTF-8 at byte offset 62/],
  ['pairs over the limit', MINIMAL + 'pairs: 1e18\n', /p\.yaml:5:1: pairs: must be <= 1000000000000, got number 1000000000000000000$/],
  ['a size over the limit', MINIMAL.replace('model: models/sd', 'model: models/sd\n  height: 100000'), /teacher\.height: must be <= 16384, got number 100000$/],
];
for (const [what, text, message] of bad) {
  test(`bad config: ${what} → a UserError naming the place`, () => {
    // latin-1 for the "not UTF-8" case: é becomes the single byte 0xe9.
    const file = configFile(text);
    if (what === 'not UTF-8') writeFileSync(file, Buffer.from(text, 'latin1'));
    assert.throws(() => loadPipelineConfig(file), (e: Error & { exitCode?: number }) => {
      assert.equal(e.name, 'UserError');
      assert.match(e.message, message);
      return true;
    });
  });
}

test('bad --set values say they came from --set', () => {
  const file = configFile(MINIMAL);
  assert.throws(() => loadPipelineConfig(file, ['identity.treshold=0.5']), /\(from --set\)|identity\.treshold: unknown key/);
  assert.throws(() => loadPipelineConfig(file, ['pairs=lots']), /pairs \(from --set\)|\(from --set\): pairs: expected integer/);
  assert.throws(() => loadPipelineConfig(file, ['pairs']), /--set pairs: expected key\.path=value/);
});

test('--set cannot reach Object.prototype, by its key path or inside its value', () => {
  const file = configFile(MINIMAL);
  for (const set of ['__proto__.polluted=1', 'constructor.prototype.polluted=1', 'teacher.__proto__.polluted=1', 'teacher.scheduler_options={__proto__: {polluted: 1}}']) {
    assert.throws(() => loadPipelineConfig(file, [set]), (e: Error) => e.name === 'UserError' && /cannot be a (config )?key/.test(e.message), set);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.throws(() => loadPipelineConfig(file, ['teacher.guidance_scale=.inf']), /p\.yaml \(from --set\): teacher\.guidance_scale: expected a finite number, got \.inf/);
});

test('a config file that never ends (/dev/zero) or is too large is refused after 4 MiB', () => {
  assert.throws(() => loadPipelineConfig('/dev/zero'), /\/dev\/zero: larger than 4194304 bytes/);
  assert.throws(() => loadPipelineConfig(configFile(MINIMAL + '#'.repeat(4 * 1024 * 1024))), /p\.yaml: larger than 4194304 bytes/);
});

test('a missing config file is a UserError', () => {
  assert.throws(() => loadPipelineConfig('/nonexistent/p.yaml'), /cannot read pipeline config \/nonexistent\/p\.yaml: no such file/);
});

test('docs/config.md is generated from the schema and up to date (npm run config-docs)', () => {
  assert.equal(readFileSync(join(REPO, 'docs/config.md'), 'utf8'), renderConfigDocs());
});
