/**
 * The worker image's Dockerfile, checked without a container engine (there is none on these machines):
 * dockerfile-utils' validator finds no problem in it, and its install steps are the Makefile's own
 * targets with the right ONNXRUNTIME_NODE_INSTALL per variant, so the image and `make setup` cannot
 * drift apart. What only a build shows (the base images' tags, the NuGet download) is not checked here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { CUDA_INSTALL, INSTALL_SCRIPT } from '../../src/onnx/providers.ts';
import { REPO } from '../helpers/run-fixture.ts';

const text = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(text);
const makefile = readFileSync(join(REPO, 'Makefile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { engines: { node: string }; bin: Record<string, string> };

/** The instructions of one build stage, by its name. */
function stage(name: string): Instruction[] {
  const from = dockerfile.getFROMs().find((f) => f.getBuildStage() === name);
  assert.ok(from, `Dockerfile has no stage ${name}`);
  const all = dockerfile.getInstructions();
  const start = all.findIndex((i) => i.getRange().start.line === from.getRange().start.line);
  const end = all.findIndex((i, k) => k > start && i.getKeyword() === 'FROM');
  return all.slice(start + 1, end === -1 ? undefined : end);
}
const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const runs = (instructions: Instruction[]) => instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => args(i).join(' '));

/** A make variable's value as the Makefile assigns it (`NAME := value`). */
function makeVariable(name: string): string {
  const m = makefile.match(new RegExp(`^(?:export\\s+)?${name}\\s*:?=\\s*(.+)$`, 'm'));
  assert.ok(m, `Makefile assigns no ${name}`);
  return m[1].trim();
}

const expand = (words: string) => words.replace(/\$\((\w+)\)/g, (_, v: string) => makeVariable(v));

/** A target's prerequisites (the rule's target may be written as a $(VAR)), with $(VAR) expanded. */
/** The environment for a make of our own: none of the make that may be running the tests (`make test`) leaks in. */
function makeEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { MAKEFLAGS: _f, MAKELEVEL: _l, MFLAGS: _m, MAKEOVERRIDES: _o, ...env } = process.env;
  return { ...env, ...extra };
}

function prerequisites(target: string): string[] {
  const rule = [...makefile.matchAll(/^(\S+):(?!=)([^=\n]*)$/gm)].find((m) => expand(m[1]) === target);
  assert.ok(rule, `Makefile has no target ${target}`);
  return expand(rule[2]).trim().split(/\s+/);
}

test('dockerfile-utils finds no problem in the Dockerfile', () => {
  assert.deepEqual(validate(text), []);
});

test('the worker stage makes exactly what `make setup` makes, through the Makefile\'s own targets, in order', () => {
  const worker = stage('worker');
  const makes = runs(worker).flatMap((r) => r.split(/\s*&&\s*/)).filter((c) => c.startsWith('make '));
  const targets = makes.flatMap((c) => c.split(/\s+/).slice(1).filter((w, i, ws) => !w.startsWith('-') && !w.includes('=') && ws[i - 1] !== '-o'));
  assert.deepEqual(targets, prerequisites('setup'));
  assert.ok(!runs(worker).some((r) => /\bnpm (ci|install|i)\b|setup-models/.test(r)), 'npm and the model conversion run through the Makefile, not copies of its recipes');
  // Each make call is one the real Makefile accepts (a dry run).
  for (const call of makes) {
    const dry = spawnSync('make', ['-n', ...call.split(/\s+/).slice(1).map((w) => w.replace(/^ONNXRUNTIME_NODE_INSTALL="\$ONNXRUNTIME_NODE_INSTALL"$/, `ONNXRUNTIME_NODE_INSTALL=${CUDA_INSTALL}`))], { cwd: REPO, encoding: 'utf8', env: makeEnv() });
    assert.equal(dry.status, 0, `${call}: ${dry.stderr}`);
  }
});

test('npm ci gets the variant\'s ONNXRUNTIME_NODE_INSTALL: skip on the CPU, the CUDA value onnxruntime-node knows', () => {
  const env = (name: string) => stage(name).filter((i) => i.getKeyword() === 'ENV').map((i) => args(i).join(' '));
  assert.deepEqual(env('base-cpu'), ['ONNXRUNTIME_NODE_INSTALL=skip']);
  assert.deepEqual(env('base-cuda'), [`ONNXRUNTIME_NODE_INSTALL=${CUDA_INSTALL}`]);
  assert.equal(makeVariable('ONNXRUNTIME_NODE_INSTALL'), 'skip');
  // The Makefile's `export X := skip` beats the environment: the stage's value must be passed on make's command line.
  const stampCall = runs(stage('worker')).find((r) => r.includes(prerequisites('setup')[0]));
  assert.match(stampCall ?? '', /ONNXRUNTIME_NODE_INSTALL="\$ONNXRUNTIME_NODE_INSTALL"/);
  const seen = spawnSync('make', ['--no-print-directory', '--eval', 'seen-by-recipes: ; @echo "$$ONNXRUNTIME_NODE_INSTALL"', 'seen-by-recipes', `ONNXRUNTIME_NODE_INSTALL=${CUDA_INSTALL}`], { cwd: REPO, encoding: 'utf8', env: makeEnv({ ONNXRUNTIME_NODE_INSTALL: 'skip' }) });
  assert.equal(seen.stdout.trim(), CUDA_INSTALL, seen.stderr);
  // The value and the provider file are the installed onnxruntime-node's own (a version that renames them fails here).
  const metadata = createRequire(import.meta.url)(join(REPO, 'node_modules/onnxruntime-node/script/install-metadata.js')) as { requirements: Record<string, string[]>; manifests: Record<string, Record<string, unknown>> };
  assert.ok(metadata.requirements['linux/x64'].includes(CUDA_INSTALL));
  assert.ok(Object.keys(metadata.manifests[`linux/x64:${CUDA_INSTALL}`]).includes('./libonnxruntime_providers_cuda.so'));
  const cudaCheck = runs(stage('worker')).find((r) => r.includes('libonnxruntime_providers_cuda.so')) ?? '';
  assert.ok(cudaCheck.includes(`node ${relative(REPO, INSTALL_SCRIPT)}`), cudaCheck);
});

test('install inputs are copied before the install, and the build context leaves out what the image makes itself', () => {
  const worker = stage('worker');
  const copies = worker.filter((i) => i.getKeyword() === 'COPY').map(args);
  const stampAt = worker.findIndex((i) => i.getKeyword() === 'RUN' && args(i).join(' ').includes(prerequisites('setup')[0]));
  const copiedBefore = worker.slice(0, stampAt).filter((i) => i.getKeyword() === 'COPY').flatMap((i) => args(i).slice(0, -1));
  for (const file of ['Makefile', '.npmrc', ...prerequisites(prerequisites('setup')[0])]) assert.ok(copiedBefore.includes(file), `${file} is copied before npm ci`);
  assert.deepEqual(copies.at(-1), ['.', '.']);
  const ignored = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  for (const p of ['node_modules', '.cache', 'runs', '.git', 'pipelines/models']) assert.ok(ignored.includes(p), `.dockerignore leaves out ${p}`);
  for (const p of ['src', 'bin', 'scripts', 'prompts', 'pipelines', 'Makefile', 'package.json', 'package-lock.json', '.npmrc']) assert.ok(!ignored.some((i) => i === p || p.startsWith(`${i}/`)), `.dockerignore keeps ${p}`);
});

test('both variants run Node of the major package.json asks for, and the image runs pairgen', () => {
  const major = pkg.engines.node.match(/\d+/)![0];
  const nodeImages = [...text.matchAll(/(?:FROM|--from=)\s*node:(\d+)-/g)].map((m) => m[1]);
  assert.equal(nodeImages.length, 3, 'the CPU base, and the CUDA base\'s node and npm');
  assert.ok(nodeImages.every((m) => m === major), `node images ${nodeImages.join(', ')} vs engines ${pkg.engines.node}`);
  const [cuda] = dockerfile.getFROMs().filter((f) => f.getBuildStage() === 'base-cuda');
  assert.match(cuda.getImageTag() ?? '', /^12\.\d+\.\d+-cudnn-runtime-/, 'CUDA 12 with cuDNN 9 (the "cudnn" tags), runtime flavour');
  // `pairgen emit` runs `pairgen work ...` in the image (its --command default): pairgen must be on PATH.
  assert.ok(runs(stage('worker')).some((r) => r.includes(`ln -s /opt/pairgen/${pkg.bin.pairgen} /usr/local/bin/pairgen`)));
  const entry = dockerfile.getInstructions().filter((i) => i.getKeyword() === 'ENTRYPOINT').at(-1);
  assert.deepEqual(JSON.parse(args(entry!).join(' ')), ['pairgen']);
  assert.equal(dockerfile.getInstructions().filter((i) => i.getKeyword() === 'USER').at(-1)?.getArguments()[0].getValue(), 'pairgen');
});
