/**
 * The bad-input corpus (issue 13): every command a careless or hostile user might type, run through the
 * real CLI (`node bin/pairgen.js`, spawned, a few at a time). Each must end with the documented exit
 * code (2: a user error; 3: `status --verify` over a broken shard, a report on stdout), exactly one
 * line on stderr and no stack trace, and leave nothing behind: the case's folder (its config, its run,
 * the --out it names) is unchanged and its TMPDIR is empty. A case whose fix belongs to another change
 * and has not landed carries `todo` (reported, not failed).
 *
 * A case is a row of CASES: `args` (in the case's own folder; {F} is the fixture models' folder, {repo}
 * the checkout), the files it needs (`files`, written before), a copy of a `run` (planned, or worked and
 * finalized), an `edit` of that folder, and `expect`, the one line on stderr.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { serializePlan, type RunPlan } from '../../src/dataset/run-file.ts';
import { finalizeRun, planRun, workRun } from '../../src/run/index.ts';
import { BIN, FIXTURES, REPO, tempDir } from '../helpers/run-fixture.ts';

interface Case {
  name: string;
  args: string[];
  /** Files written into the case's folder before it runs (cfg.yaml, the base config, is always there). */
  files?: Record<string, string | Buffer>;
  /** A copy of a template run at `run/`: planned only, or worked and finalized. */
  run?: 'planned' | 'finalized';
  /** Any other preparation of the case's folder. */
  edit?: (dir: string) => void;
  /** The one line on stderr; or, with `stdout: true`, a line of stdout (a report) and nothing on stderr. */
  expect: RegExp;
  stdout?: boolean;
  /** Must appear nowhere in stdout or stderr (a file's content, a secret). */
  never?: RegExp;
  /** Default 2. */
  code?: number;
  /** Set while the owning change has not landed: the case is reported as a todo, not a failure. */
  todo?: string;
}

const F = FIXTURES;
const SD = `${F}/tiny-sd`;
const BASE = `seed: 1\npairs: 4\nshard_size: 2\nprompts: { set: ${REPO}prompts/demo.yaml }\nteacher: { model: ${SD}, steps: 2 }\nidentity: { enabled: false }\n`;
const withBase = (extra: string) => BASE + extra;
const demoPrompts = readFileSync(join(REPO, 'prompts/demo.yaml'));
const BOMB = 'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
const SVG_FILE_REF = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64"><image href="file:///etc/passwd" xlink:href="file:///etc/passwd" width="64" height="64"/></svg>';
const img2img = (sources: string) => ['--set', 'teacher.mode=img2img', '--set', 'teacher.strength=0.5', '--set', `teacher.sources.path=${sources}`];
/** A copy of tiny-sd at `models/<name>` whose unet/model.onnx is replaced by `unet`. */
const brokenUnet = (name: string, unet: (original: Buffer) => Buffer) => (dir: string) => {
  cpSync(SD, join(dir, 'models', name), { recursive: true });
  const file = join(dir, 'models', name, 'unet/model.onnx');
  writeFileSync(file, unet(readFileSync(file)));
};
/** Rewrite run/run.json through `change` (its seal no longer matches). */
const editRunJson = (change: (plan: Record<string, any>) => void) => (dir: string) => {
  const file = join(dir, 'run/run.json');
  const plan = JSON.parse(readFileSync(file, 'utf8'));
  change(plan);
  writeFileSync(file, JSON.stringify(plan, null, 2) + '\n');
};
/** Rewrite run/run.json as pairgen would seal it, with a config no plan accepts. */
const resealRunJson = (change: (plan: RunPlan) => void) => (dir: string) => {
  const file = join(dir, 'run/run.json');
  const plan = JSON.parse(readFileSync(file, 'utf8')) as RunPlan;
  change(plan);
  writeFileSync(file, serializePlan(plan));
};
const q = (sql: string) => ['query', 'run', sql];
/** One byte of run/'s first data file flipped: same size, other sha256. */
const corruptShard = (dir: string) => {
  const data = join(dir, 'run/data');
  const file = join(data, readdirSync(data).sort()[0]);
  const bytes = readFileSync(file);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(file, bytes);
};
/** Helper C's sandbox: file functions, extensions, http and settings are off; only SELECT runs. */
const QUERY_REFUSED = /^error: query: (.*file system operations are disabled|only SELECT queries are allowed)/;

const CASES: Case[] = [
  // The config file itself.
  { name: 'config file missing', args: ['check', 'nope.yaml'], expect: /cannot read pipeline config nope\.yaml: no such file/ },
  { name: 'config is a folder', args: ['plan', 'sub', '--out', 'x'], edit: (d) => mkdirSync(join(d, 'sub')), expect: /cannot read pipeline config sub: .*EISDIR/ },
  { name: 'config is /dev/zero (never ends)', args: ['check', '/dev/zero'], expect: /\/dev\/zero: larger than 4194304 bytes/ },
  { name: 'config over the size cap', args: ['plan', 'big.yaml', '--out', 'x'], files: { 'big.yaml': BASE + `# ${'x'.repeat(5 * 1024 * 1024)}\n` }, expect: /big\.yaml: larger than 4194304 bytes/ },
  { name: 'config not UTF-8', args: ['plan', 'c.yaml', '--out', 'x'], files: { 'c.yaml': Buffer.concat([Buffer.from(BASE), Buffer.from([0x23, 0x20, 0xff, 0x0a])]) }, expect: new RegExp(`c\\.yaml: not valid UTF-8 at byte offset ${BASE.length + 2}`) },
  { name: 'malformed YAML', args: ['plan', 'c.yaml', '--out', 'x'], files: { 'c.yaml': 'prompts:\n  set: [unclosed\nteacher: {}\n' }, expect: /c\.yaml:\d+:\d+: not valid YAML\/JSON/ },
  { name: 'duplicate key', args: ['plan', 'c.yaml', '--out', 'x'], files: { 'c.yaml': withBase('pairs: 9\n') }, expect: /c\.yaml:7:1: not valid YAML\/JSON: .*unique/ },
  { name: 'unknown key', args: ['plan', 'c.yaml', '--out', 'x'], files: { 'c.yaml': withBase('shard_sise: 3\n') }, expect: /c\.yaml:7:1: shard_sise: unknown key; expected one of: / },
  { name: 'wrong type', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'pairs=lots'], expect: /cfg\.yaml \(from --set\): pairs: expected integer, got string "lots"/ },
  { name: 'a list at the top level', args: ['check', 'c.yaml'], files: { 'c.yaml': '- a\n- b\n' }, expect: /c\.yaml: expected a mapping of keys at the top level, got a list/ },
  { name: 'YAML alias bomb in the config', args: ['plan', 'c.yaml', '--out', 'x'], files: { 'c.yaml': BOMB }, expect: /c\.yaml: its aliases \(\*name\) expand to too many values/ },
  { name: 'YAML __proto__ key in the config', args: ['check', 'c.yaml'], files: { 'c.yaml': withBase('__proto__: { polluted: 1 }\n') }, expect: /c\.yaml:7:1: "__proto__" cannot be a key/ },
  { name: 'YAML constructor key inside scheduler_options', args: ['plan', 'c.yaml', '--out', 'x'], files: { 'c.yaml': BASE.replace('steps: 2', 'steps: 2, scheduler_options: { constructor: { prototype: { x: 1 } } }') }, expect: /c\.yaml:5:\d+: "constructor" cannot be a key/ },
  { name: '--set __proto__.x=1', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', '__proto__.x=1'], expect: /--set __proto__\.x: "__proto__" cannot be a config key/ },
  { name: '--set constructor.prototype.x=1', args: ['check', 'cfg.yaml', '--set', 'constructor.prototype.x=1'], expect: /--set constructor\.prototype\.x: "constructor" cannot be a config key/ },
  { name: '--set teacher.__proto__.steps=1', args: ['check', 'cfg.yaml', '--set', 'teacher.__proto__.steps=1'], expect: /"__proto__" cannot be a config key/ },
  { name: '--set a value with a __proto__ key', args: ['check', 'cfg.yaml', '--set', 'teacher.scheduler_options={__proto__: {a: 1}}'], expect: /--set teacher\.scheduler_options:1:2: "__proto__" cannot be a key/ },
  { name: '--set an alias bomb value', args: ['check', 'cfg.yaml', '--set', `teacher.scheduler_options={${BOMB.trim().split('\n').join(', ')}}`], expect: /--set teacher\.scheduler_options: its aliases/ },
  { name: '--set without a value', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'pairs'], expect: /--set pairs: expected key\.path=value/ },
  { name: 'guidance_scale: .inf', args: ['plan', 'c.yaml', '--out', 'x'], files: { 'c.yaml': BASE.replace('steps: 2', 'steps: 2, guidance_scale: .inf') }, expect: /c\.yaml:5:\d+: teacher\.guidance_scale: expected a finite number, got \.inf/ },
  { name: 'guidance_scale .nan from --set', args: ['check', 'cfg.yaml', '--set', 'teacher.guidance_scale=.nan'], expect: /cfg\.yaml \(from --set\): teacher\.guidance_scale: expected a finite number, got \.nan/ },
  { name: 'identity.threshold: -.inf', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'identity.threshold=-.inf'], expect: /identity\.threshold: expected a finite number, got -\.inf/ },
  { name: 'pairs: 1e18 names pairs, not --count', args: ['plan', 'c.yaml', '--out', 'x'], files: { 'c.yaml': BASE.replace('pairs: 4', 'pairs: 1e18') }, expect: /c\.yaml:2:1: pairs: must be <= 1000000000000, got number 1000000000000000000$/, never: /--count/ },
  { name: 'pairs: 0', args: ['plan', 'cfg.yaml', '--out', 'x', '--pairs', '0'], expect: /--pairs must be a whole number ≥ 1 \(below 2\^53\) \(see --help\)$/ },
  { name: 'prompts.count over the limit', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'prompts.count=60000000'], expect: /prompts\.count: must be <= 50000000/ },
  { name: 'pairs whose default prompt count is over the limit', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'pairs=100000000'], expect: /cfg\.yaml: prompts\.count: null expands one prompt row per pair \(pairs: 100000000\), more than the 50000000 rows/ },
  { name: 'shard_size: 0', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'shard_size=0'], expect: /shard_size: must be >= 1/ },

  // Prompt sets.
  { name: 'prompt set missing', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'prompts.set=none.yaml'], expect: /cfg\.yaml: prompts\.set: .*none\.yaml: cannot read the prompt set \(no such file\)/ },
  { name: 'prompt set not UTF-8', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'prompts.set=p.yaml'], files: { 'p.yaml': Buffer.concat([demoPrompts, Buffer.from('# caf\xe9\n', 'latin1')]) }, expect: new RegExp(`p\\.yaml: not valid UTF-8 at byte offset ${demoPrompts.length + 5}`) },
  { name: 'prompt set alias bomb', args: ['check', 'cfg.yaml', '--set', 'prompts.set=p.yaml'], files: { 'p.yaml': BOMB }, expect: /p\.yaml: its aliases \(\*name\) expand to too many values/ },
  { name: 'prompt set __proto__ key', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'prompts.set=p.yaml'], files: { 'p.yaml': `__proto__: { x: 1 }\n${demoPrompts}` }, expect: /p\.yaml:1:1: "__proto__" cannot be a key/ },
  { name: 'prompt set malformed', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'prompts.set=p.yaml'], files: { 'p.yaml': 'sources: [a, b\ncategories: {}\n' }, expect: /p\.yaml:\d+:\d+: malformed YAML/ },
  { name: 'expand: prompt set not UTF-8', args: ['expand', 'p.yaml', '--out', 'p.parquet'], files: { 'p.yaml': Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xc3, 0x28, 0x0a]) }, expect: /p\.yaml: not valid UTF-8 at byte offset 6/ },

  // Sizes.
  { name: 'height 65 (plan)', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.height=65'], expect: /cfg\.yaml: teacher\.height: 65 is not a multiple of 2, the VAE scale factor/ },
  { name: 'height 65 (check)', args: ['check', 'cfg.yaml', '--set', 'teacher.height=65'], expect: /cfg\.yaml: teacher\.height: 65 is not a multiple of 2/ },
  { name: '100000 x 100000', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.height=100000', '--set', 'teacher.width=100000'], expect: /teacher\.(height|width): must be <= 16384, got number 100000/ },
  { name: '16384 x 16384: over max_pixels', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.height=16384'], expect: /teacher\.height x teacher\.width: 16384 x 16384 is 268435456 pixels, more than teacher\.max_pixels \(4194304\); allowed: each side 8-16384/ },
  { name: 'height 4', args: ['check', 'cfg.yaml', '--set', 'teacher.height=4'], expect: /teacher\.height: must be >= 8/ },
  { name: 'sample --height 100000', args: ['sample', '--model', SD, '--prompt', 'a face', '--steps', '1', '--guidance', '1', '--height', '100000', '--width', '64', '--out', 'o.png'], expect: /--height: expected an integer from 8 to 16384, got "100000"/ },
  { name: 'sample 4096 x 4096', args: ['sample', '--model', SD, '--prompt', 'a face', '--steps', '1', '--guidance', '1', '--height', '4096', '--width', '4096', '--out', 'o.png'], expect: /--height x --width: 4096 x 4096 is 16777216 pixels, more than 4194304/ },
  { name: 'sample --guidance nan', args: ['sample', '--model', SD, '--prompt', 'a face', '--steps', '1', '--guidance', 'NaN', '--height', '64', '--width', '64', '--out', 'o.png'], expect: /--guidance: expected a number >= 0, got "NaN"/ },

  // Model files, schedulers, execution providers, modes.
  { name: 'a UNet that is not ONNX (plan)', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.model=models/text'], edit: brokenUnet('text', () => Buffer.from('not a model\n')), expect: /teacher\.model: .*models\/text\/unet\/model\.onnx cannot be read as an ONNX model/ },
  { name: 'a UNet that is not ONNX (check)', args: ['check', 'cfg.yaml', '--set', 'teacher.model=models/text'], edit: brokenUnet('text', () => Buffer.from('not a model\n')), expect: /cfg\.yaml: teacher\.model: .*unet\/model\.onnx cannot be read as an ONNX model/ },
  { name: 'a truncated UNet', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.model=models/cut'], edit: brokenUnet('cut', (b) => b.subarray(0, b.length >> 1)), expect: /models\/cut\/unet\/model\.onnx cannot be read as an ONNX model: the file is truncated/ },
  { name: 'an empty UNet file', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.model=models/empty'], edit: brokenUnet('empty', () => Buffer.alloc(0)), expect: /models\/empty\/unet\/model\.onnx/ },
  { name: 'model folder missing', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.model=models/none'], expect: /teacher\.model: model folder .*models\/none does not exist/ },
  { name: 'model path is a file', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.model=cfg.yaml'], expect: /teacher\.model: .*cfg\.yaml is a file, expected a folder/ },
  { name: 'instruct mode without an instruct model (plan)', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.mode=instruct'], expect: /teacher\.edit_model: mode "instruct" needs an InstructPix2Pix model/ },
  { name: 'instruct mode without an instruct model (check)', args: ['check', 'cfg.yaml', '--set', 'teacher.mode=instruct'], expect: /teacher\.edit_model: mode "instruct" needs an InstructPix2Pix model/ },
  { name: 'an InstructPix2Pix model as the source model', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', `teacher.model=${F}/tiny-sd-ip2p`], expect: /teacher\.model: .*tiny-sd-ip2p is an InstructPix2Pix model/ },
  { name: 'unknown scheduler (plan)', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.scheduler=FastScheduler'], expect: /teacher\.scheduler: unknown scheduler class "FastScheduler"; known: DDIMScheduler, / },
  { name: 'unknown scheduler (check)', args: ['check', 'cfg.yaml', '--set', 'teacher.scheduler=FastScheduler'], expect: /teacher\.scheduler: unknown scheduler class "FastScheduler"/ },
  { name: 'model folder with an unknown scheduler class', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.model=models/unipc'], edit: (d) => {
    cpSync(SD, join(d, 'models/unipc'), { recursive: true });
    const f = join(d, 'models/unipc/scheduler/scheduler_config.json');
    writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), _class_name: 'UniPCMultistepScheduler' }));
  }, expect: /teacher\.model: scheduler config .*unknown scheduler class "UniPCMultistepScheduler"/ },
  { name: 'unknown execution provider (plan)', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'runtime.execution_providers=[tpu, cpu]'], expect: /runtime\.execution_providers\.0: unknown execution provider "tpu"; known: cpu, cuda, tensorrt, dml, webgpu, coreml/ },
  { name: 'unknown execution provider (check)', args: ['check', 'cfg.yaml', '--set', 'runtime.execution_providers=[cpu, gpu]'], expect: /runtime\.execution_providers\.1: unknown execution provider "gpu"/ },
  { name: 'img2img without sources', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'teacher.mode=img2img', '--set', 'teacher.strength=0.5'], expect: /teacher\.sources: mode "img2img" edits real portraits/ },
  { name: 'img2img sources: SVG with a file:// reference', args: ['plan', 'cfg.yaml', '--out', 'x', ...img2img('faces')], files: { 'faces/a.png': SVG_FILE_REF }, expect: /cannot read image .*faces\/a\.png: SVG is not a supported format/, never: /root:/ },
  { name: 'img2img sources: SVG (check)', args: ['check', 'cfg.yaml', ...img2img('faces')], files: { 'faces/a.jpg': SVG_FILE_REF }, expect: /cannot read image .*faces\/a\.jpg: SVG is not a supported format/ },
  { name: 'img2img sources: text named .jpg', args: ['plan', 'cfg.yaml', '--out', 'x', ...img2img('faces')], files: { 'faces/a.jpg': 'hello' }, expect: /cannot read image .*faces\/a\.jpg: unsupported image format/ },
  { name: 'img2img sources: no images in the folder', args: ['plan', 'cfg.yaml', '--out', 'x', ...img2img('faces')], files: { 'faces/notes.txt': 'hello' }, expect: /teacher\.sources\.path: .*faces holds no .*images/ },
  { name: 'faces detect an SVG', args: ['faces', 'detect', 'a.svg'], files: { 'a.svg': SVG_FILE_REF }, expect: /cannot read image a\.svg: SVG is not a supported format/ },
  { name: 'arcface embedder without a model', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'identity={embedder: {kind: arcface}}'], expect: /identity\.embedder\.model: required when identity\.embedder\.kind is arcface/ },
  { name: 'scrfd detector model is a folder', args: ['plan', 'cfg.yaml', '--out', 'x', '--set', 'identity={detector: {kind: scrfd, model: models}}'], edit: (d) => mkdirSync(join(d, 'models')), expect: /identity\.detector\.model: .*models is a folder, expected an \.onnx file/ },

  // A run's files: run.json integrity, the prompt table.
  { name: 'run.json edited (steps): work', args: ['work', 'run'], run: 'planned', edit: editRunJson((p) => (p.config.teacher.steps = 3)), expect: /run\/run\.json: edited after planning: config\.teacher\.steps differs from what `pairgen plan` wrote/ },
  { name: 'run.json edited (steps): status', args: ['status', 'run'], run: 'planned', edit: editRunJson((p) => (p.config.teacher.steps = 3)), expect: /run\.json: edited after planning: config\.teacher\.steps differs/ },
  { name: 'run.json edited (pairs, shards): work', args: ['work', 'run'], run: 'planned', edit: editRunJson((p) => Object.assign(p, { pairs: 6, shards: 3 })), expect: /run\.json: edited after planning: pairs, shards differ/ },
  { name: 'run.json with an added key', args: ['work', 'run'], run: 'planned', edit: editRunJson((p) => (p.config.teacher.extra = 1)), expect: /run\.json: edited after planning: config\.teacher\.extra differs/ },
  { name: 'run.json edited: finalize', args: ['finalize', 'run'], run: 'finalized', edit: editRunJson((p) => (p.config.identity.threshold = 0.1)), expect: /run\.json: edited after planning: config\.identity\.threshold differs/ },
  { name: 'run.json without its plan_digest', args: ['work', 'run'], run: 'planned', edit: editRunJson((p) => delete p.plan_digest), expect: /run\.json: has no plan_digest/ },
  { name: 'run.json with an edited plan_digest', args: ['work', 'run'], run: 'planned', edit: editRunJson((p) => (p.plan_digest = '0'.repeat(64))), expect: /run\.json: its plan_digest does not match its content/ },
  { name: 'run.json not JSON', args: ['work', 'run'], run: 'planned', edit: (d) => writeFileSync(join(d, 'run/run.json'), '{ not json'), expect: /run\/run\.json: not valid JSON/ },
  { name: 'no run at the place', args: ['work', 'empty'], edit: (d) => mkdirSync(join(d, 'empty')), expect: /empty: no run here \(no run\.json\)/ },
  { name: 'prompts.parquet deleted: work', args: ['work', 'run'], run: 'planned', edit: (d) => unlinkSync(join(d, 'run/prompts.parquet')), expect: /run\/prompts\.parquet is missing \(the run's prompt table\); run `pairgen plan` again/ },
  { name: 'a sealed run.json whose config no plan accepts: work refuses before any shard', args: ['work', 'run'], run: 'planned', edit: resealRunJson((p) => Object.assign(p.config.teacher, { height: 100000, width: 100000 })), expect: /run\/run\.json: teacher\.height x teacher\.width: 100000 x 100000 is 10000000000 pixels/ },
  { name: 'a sealed run.json with an unknown provider: work', args: ['work', 'run'], run: 'planned', edit: resealRunJson((p) => (p.config.runtime.execution_providers = ['tpu'])), expect: /run\/run\.json: runtime\.execution_providers\.0: unknown execution provider "tpu"/ },
  { name: 'plan over a different run', args: ['plan', 'cfg.yaml', '--out', 'run', '--set', 'teacher.steps=3'], run: 'planned', expect: /run already holds a different run \(config\.teacher\.steps is 2 there, 3 here\)/ },
  { name: 'work on a shard not in the run', args: ['work', 'run', '--shards', '7'], run: 'planned', expect: /shard 7 is not in this run \(it has shards 0-1\)/ },
  { name: 'a shard corrupted without a size change: finalize', args: ['finalize', 'run', '--no-preview'], run: 'finalized', edit: corruptShard, expect: /1 shard has a marker that does not match its files \(shard-00000: data\/.*: sha256 differs from the marker\)/ },
  { name: 'a shard corrupted without a size change: status --verify', args: ['status', 'run', '--verify'], run: 'finalized', edit: corruptShard, code: 3, stdout: true, expect: /^shards: .*1 with a marker that does not match its files/ },

  // Query and --where (helper C's sandbox).
  { name: 'query read_text(/etc/passwd)', args: q("SELECT * FROM read_text('/etc/passwd')"), run: 'finalized', expect: QUERY_REFUSED, never: /root:/ },
  { name: 'query read_csv(/etc/passwd)', args: q("SELECT * FROM read_csv('/etc/passwd')"), run: 'finalized', expect: QUERY_REFUSED, never: /root:/ },
  { name: 'query read_blob', args: q("SELECT * FROM read_blob('/etc/passwd')"), run: 'finalized', expect: QUERY_REFUSED, never: /root:/ },
  { name: 'query glob(/etc/*)', args: q("SELECT * FROM glob('/etc/*')"), run: 'finalized', expect: QUERY_REFUSED, never: /passwd/ },
  { name: 'query read_parquet of another path', args: q("SELECT * FROM read_parquet('/etc/*.parquet')"), run: 'finalized', expect: QUERY_REFUSED },
  { name: 'query an http URL (extension install)', args: q("SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')"), run: 'finalized', expect: QUERY_REFUSED },
  { name: 'query EXPORT DATABASE creates nothing', args: q("EXPORT DATABASE 'exported'"), run: 'finalized', expect: QUERY_REFUSED },
  { name: 'query INSTALL httpfs', args: q('INSTALL httpfs'), run: 'finalized', expect: QUERY_REFUSED },
  { name: 'query over the row limit', args: q('SELECT * FROM range(50000000)'), run: 'finalized', expect: /^error: query: the result has more than 100000 rows/ },
  { name: 'preview --where with a UNION rewrite', args: ['preview', 'run', '--where', "true) UNION ALL (SELECT * FROM manifest", '--out', 'sheet.png'], run: 'finalized', expect: /^error: --where "true\) UNION ALL .*": syntax error/ },
  { name: 'export --where with a subquery reading a file', args: ['export', 'run', '--format', 'webdataset', '--where', "(SELECT count(*) FROM read_text('/etc/passwd')) > 0", '--out', 'wds'], run: 'finalized', expect: /^error: --where .*: subqueries are not allowed/, never: /root:/ },
  { name: 'regenerate --where with a subquery', args: ['regenerate', 'run', '--where', "pair_id IN (SELECT content FROM read_text('/etc/passwd'))", '--out', 'again'], run: 'finalized', expect: /^error: --where .*: subqueries are not allowed/, never: /root:/ },

  // Storage (helper E) and export (helper B).
  { name: 'credentials in an endpoint URL are not printed', args: ['plan', 'cfg.yaml', '--out', 's3://bucket/r', '--set', 'storage.endpoint=http://AKIDKEY:S3CRETVALUE@127.0.0.1:9'], expect: /storage\.endpoint: credentials in the URL are not allowed/, never: /S3CRETVALUE/ },
  { name: 'credentials in an endpoint URL, JSON log format', args: ['--log-format', 'json', 'plan', 'cfg.yaml', '--out', 's3://bucket/r', '--set', 'storage.endpoint=http://AKIDKEY:S3CRETVALUE@127.0.0.1:9'], expect: /"level":"error"/, never: /S3CRETVALUE/ },
  { name: 'plan --out under /proc', args: ['plan', 'cfg.yaml', '--out', '/proc/pairgen-x'], expect: /\/proc\/pairgen-x is on a special file system/ },
  { name: 'expand --out under /proc', args: ['expand', `${REPO}prompts/demo.yaml`, '--out', '/proc/pairgen-x/p.parquet', '--count', '2'], expect: /\/proc\/pairgen-x\/p\.parquet is on a special file system/ },
  { name: 'sample --out under /proc', args: ['sample', '--model', SD, '--prompt', 'a face', '--steps', '1', '--guidance', '1', '--height', '64', '--width', '64', '--out', '/proc/pairgen-x.png'], expect: /\/proc\/pairgen-x\.png is on a special file system/ },
  { name: 'emit --out under /proc', args: ['emit', 'slurm', 'run', '--workers', '2', '--out', '/proc/pairgen-x'], run: 'planned', expect: /\/proc\/pairgen-x is on a special file system/ },
  { name: 'file:// URI with a query string', args: ['plan', 'cfg.yaml', '--out', 'file:///tmp/pairgen-bad-x?x=1#frag'], expect: /file:\/\/ URI names a path only/ },
  { name: 'export into a path under a file (write error)', args: ['export', 'run', '--format', 'webdataset', '--out', 'cfg.yaml/wds'], run: 'finalized', expect: /cfg\.yaml\/wds: cannot write .*ENOTDIR/ },

  // Usage errors: one line too (commander's message and a pointer to --help).
  { name: 'an unknown verb', args: ['frobnicate'], expect: /^error: unknown command 'frobnicate' \(see --help\)$/ },
  { name: 'plan without --out', args: ['plan', 'cfg.yaml'], expect: /^error: required option '--out <uri>' not specified \(see --help\)$/ },
  { name: 'a bad --log-format', args: ['--log-format', 'xml', 'status', 'run'], expect: /--log-format must be "human" or "json", got "xml"/ },
  { name: 'work --count 0', args: ['work', 'run', '--index', '0', '--count', '0'], run: 'planned', expect: /--count must be a whole number ≥ 1/ },
];

// --- running the table ---------------------------------------------------------------------------

const root = tempDir('pairgen-bad-inputs-');
after(() => rmSync(root, { recursive: true, force: true }));
const templates = { planned: join(root, 'tpl-planned'), finalized: join(root, 'tpl-finalized') };
const POOL = 3;
/** A command that hangs is a failure too (e.g. a write that spins), not a stuck test run. */
const TIMEOUT_MS = 45_000;
/**
 * tsx (which runs bin/pairgen.js) keeps its compile cache in $TMPDIR/tsx-<user>: each case's own TMPDIR
 * links to the shared one, else every process would compile the whole source again.
 */
const TSX_CACHE = `tsx-${process.geteuid?.() ?? userInfo().username}`;

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  changed: string[];
  leftInTmp: string[];
}
const outcomes = new Map<string, Outcome>();

/** Every file and folder under dir → its size and content digest, to see that nothing changed. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out.set(r + '/', 'dir');
        walk(r);
      } else out.set(r, `${statSync(join(dir, r)).size}:${createHash('sha256').update(readFileSync(join(dir, r))).digest('hex')}`);
    }
  };
  walk('');
  return out;
}

function runCase(c: Case, i: number): Promise<Outcome> {
  const dir = join(root, `case-${i}`);
  const tmp = join(root, `tmp-${i}`);
  mkdirSync(dir);
  mkdirSync(tmp);
  mkdirSync(join(tmpdir(), TSX_CACHE), { recursive: true });
  symlinkSync(join(tmpdir(), TSX_CACHE), join(tmp, TSX_CACHE));
  writeFileSync(join(dir, 'cfg.yaml'), BASE);
  for (const [name, content] of Object.entries(c.files ?? {})) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  if (c.run) cpSync(templates[c.run], join(dir, 'run'), { recursive: true });
  c.edit?.(dir);
  const before = snapshot(dir);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...c.args], { cwd: dir, env: { ...process.env, TMPDIR: tmp, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' }, timeout: TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const now = snapshot(dir);
      const changed = [...new Set([...before.keys(), ...now.keys()])].filter((k) => before.get(k) !== now.get(k));
      resolve({ code, stdout, stderr, changed, leftInTmp: readdirSync(tmp).filter((f) => f !== TSX_CACHE) });
    });
  });
}

before(async () => {
  // The templates: a planned run, and one worked and finalized (tiny-sd, 4 pairs, 2 steps).
  const cfg = join(root, 'cfg.yaml');
  writeFileSync(cfg, BASE);
  await planRun(cfg, templates.planned);
  await planRun(cfg, templates.finalized);
  await workRun(templates.finalized);
  await finalizeRun(templates.finalized, { preview: false });
  let next = 0;
  const worker = async () => {
    while (next < CASES.length) {
      const i = next++;
      outcomes.set(CASES[i].name, await runCase(CASES[i], i));
    }
  };
  await Promise.all(Array.from({ length: POOL }, worker));
});

test('the corpus has at least 60 cases with distinct names', () => {
  assert.ok(CASES.length >= 60, `${CASES.length} cases`);
  assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length);
});

for (const c of CASES) {
  test(`bad input: ${c.name}`, { todo: c.todo }, () => {
    const o = outcomes.get(c.name)!;
    const lines = o.stderr.split('\n').filter((l) => l.trim() !== '');
    const shown = `exit ${o.code}\nstderr:\n${o.stderr}\nstdout:\n${o.stdout.slice(0, 500)}`;
    assert.equal(o.code, c.code ?? 2, shown);
    assert.ok(!lines.some((l) => /^\s+at /.test(l)), `a stack trace:\n${shown}`);
    if (c.stdout) {
      assert.deepEqual(lines, [], `expected nothing on stderr:\n${shown}`);
      assert.ok(o.stdout.split('\n').some((l) => c.expect.test(l)), shown);
    } else {
      assert.equal(lines.length, 1, `expected exactly one line on stderr:\n${shown}`);
      assert.match(lines[0], c.expect, shown);
    }
    if (c.never) assert.doesNotMatch(o.stdout + o.stderr, c.never, shown);
    assert.deepEqual(o.changed, [], `files written or changed in the case's folder:\n${shown}`);
    assert.deepEqual(o.leftInTmp, [], `left in TMPDIR:\n${shown}`);
  });
}

// Kept honest: the base config these cases vary plans, works and finalizes (else a case could pass for the wrong reason).
test('the base config of the corpus makes a whole run', () => {
  assert.ok(existsSync(join(templates.planned, 'run.json')));
  assert.ok(existsSync(join(templates.finalized, 'manifest.parquet')));
});
