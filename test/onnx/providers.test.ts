/**
 * Execution providers (src/onnx/providers.ts): which ones this install loads, the refusal of a config that
 * lists one it cannot (`pairgen check` and `pairgen work` exit 2 naming the provider and how to install
 * it; `plan` does not probe, a CPU-only submit host plans for GPU workers), and the GPU a worker picks
 * from its engine's environment. On this repository's setup the CUDA provider is never installed (the
 * Makefile sets ONNXRUNTIME_NODE_INSTALL=skip); the tests that rely on that say so and skip elsewhere.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isUserError } from '../../src/errors.ts';
import { builtProviders, executionProviders, INSTALL_COMMAND, ORT_BIN_DIR, probeInChild, probeProviders, selectDevice } from '../../src/onnx/providers.ts';
import { openSession } from '../../src/onnx/session.ts';
import { BIN, FIXTURES, REPO, tempDir } from '../helpers/run-fixture.ts';

const dirs: string[] = [];
const scratch = (prefix: string) => {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const cudaInstalled = existsSync(join(ORT_BIN_DIR, 'libonnxruntime_providers_cuda.so'));
const noCuda = cudaInstalled ? 'the CUDA provider library is installed here' : false;
const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
const pairgen = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });

/** A one-shard run over the tiny-sd fixture: 2 pairs, 2 steps, 64 px. */
function writePipeline(providers: string): string {
  const dir = scratch('pairgen-providers-');
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    [
      'seed: 3',
      'pairs: 2',
      'shard_size: 2',
      `prompts: { set: ${join(REPO, 'prompts/demo.yaml')} }`,
      `teacher: { model: ${join(FIXTURES, 'tiny-sd')}, steps: 2, height: 64, width: 64 }`,
      'identity: { enabled: false }',
      `runtime: { execution_providers: ${providers}, batch_size: 2 }`,
      '',
    ].join('\n'),
  );
  return file;
}

test('the binding lists its providers; cpu always loads and needs no probe', async () => {
  const built = builtProviders();
  assert.ok(built.includes('cpu'), built.join(', '));
  assert.deepEqual(await probeProviders(['cpu']), [{ name: 'cpu', loadable: true, problem: null }]);
});

test('a provider the binding was not built with is named with what it has', async () => {
  const absent = ['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml'].find((p) => !builtProviders().includes(p));
  assert.ok(absent, 'some provider is always missing from a platform build (dml off Windows, coreml off macOS)');
  const [status] = await probeProviders([absent]);
  assert.equal(status.loadable, false);
  assert.match(status.problem ?? '', new RegExp(`has no ${absent} provider \\(it has cpu`));
});

test('cuda without its provider library: not loadable, naming the missing file and the install command', { skip: noCuda }, async () => {
  const [cpu, cuda] = await probeProviders(['cpu', 'cuda', 'cuda']);
  assert.equal(cpu.loadable, true);
  assert.equal(cuda.name, 'cuda');
  assert.equal(cuda.loadable, false);
  assert.match(cuda.problem ?? '', /libonnxruntime_providers_cuda\.so/);
  assert.ok(cuda.problem?.includes(INSTALL_COMMAND), cuda.problem ?? '');
  assert.match(cuda.problem ?? '', /cuDNN 9 libraries on LD_LIBRARY_PATH/);
});

test('a provider library that does not load: the probe names the library the loader could not open', { skip: noCuda }, async () => {
  const [cuda] = await probeInChild(['cuda']);
  assert.equal(cuda.loadable, false);
  assert.match(cuda.problem ?? '', /^the cuda provider is installed but does not load here: \S*libonnxruntime_providers_shared\.so: cannot open shared object file: No such file or directory\. It needs an NVIDIA driver and GPU, the CUDA 12 runtime libraries and cuDNN 9 on LD_LIBRARY_PATH/);
});

test('openSession with [cuda, cpu] fails as a user error naming cuda, never silently on the CPU', { skip: noCuda }, async () => {
  const model = join(FIXTURES, 'tiny-sd/vae_decoder/model.onnx');
  await assert.rejects(
    openSession(model, { execution_providers: ['cuda', 'cpu'], intra_op_threads: 1, inter_op_threads: 1, graph_optimization: 'all' }),
    (e: Error) => isUserError(e) && e.message.includes('runtime.execution_providers: cuda: the cuda provider is not installed') && e.message.includes(INSTALL_COMMAND),
  );
  const session = await openSession(model, { execution_providers: ['cpu'], intra_op_threads: 1, inter_op_threads: 1, graph_optimization: 'all' });
  await session.release();
});

test('CLI check: [cuda] and [cuda, cpu] exit 2 naming the provider and how to install it; [cpu] is ok', { skip: noCuda }, () => {
  for (const providers of ['[cuda]', '[cuda, cpu]']) {
    const r = pairgen('check', writePipeline(providers));
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: .*pipeline\.yaml: runtime\.execution_providers\.0: cuda cannot be used on this machine \(providers loadable here: cpu[,;]/);
    assert.ok(r.stderr.includes(INSTALL_COMMAND), r.stderr);
    assert.match(r.stderr, /docs\/gpu\.md/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  const ok = pairgen('check', writePipeline('[cpu]'));
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /: ok\n/);
});

test('CLI check: a worker whose engine hid every GPU is refused by name', () => {
  const r = spawnSync(process.execPath, [BIN, 'check', writePipeline('[cuda, cpu]')], { encoding: 'utf8', env: { ...env, CUDA_VISIBLE_DEVICES: '' } });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /runtime\.execution_providers: CUDA_VISIBLE_DEVICES="" hides every GPU from this worker, but runtime\.execution_providers asks for cuda/);
});

test('plan accepts a GPU config on a CPU-only host; work refuses it before any shard, writing nothing', { skip: noCuda }, () => {
  const out = join(scratch('pairgen-providers-run-'), 'run');
  const plan = pairgen('plan', writePipeline('[cuda, cpu]'), '--out', out);
  assert.equal(plan.status, 0, plan.stderr);
  const before = readdirSync(out).sort();
  const work = pairgen('work', out);
  assert.equal(work.status, 2, work.stderr);
  assert.match(work.stderr, /run\.json: runtime\.execution_providers: cuda: the cuda provider is not installed/);
  assert.ok(work.stderr.includes(INSTALL_COMMAND), work.stderr);
  assert.deepEqual(readdirSync(out).sort(), before, 'work wrote nothing');
});

test('work logs the device its models run on, in each shard\'s line', () => {
  const out = join(scratch('pairgen-providers-run-'), 'run');
  assert.equal(pairgen('plan', writePipeline('[cpu]'), '--out', out).status, 0);
  const work = spawnSync(process.execPath, [BIN, '--log-format', 'json', 'work', out], { encoding: 'utf8', env });
  assert.equal(work.status, 0, work.stderr);
  const lines = work.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.some((l) => l.msg === 'models run on cpu'), work.stderr);
  const committed = lines.find((l) => l.msg === 'shard-00000 committed');
  assert.equal(committed?.device, 'cpu', work.stderr);
});

test('device choice: the engine binds GPUs by visibility, onnxruntime counts from 0 inside them', () => {
  const cases: [NodeJS.ProcessEnv, number, string][] = [
    [{}, 0, 'cuda:0 (no GPU binding in the environment: the first GPU of the machine)'],
    [{ CUDA_VISIBLE_DEVICES: '3' }, 0, 'cuda:0 (CUDA_VISIBLE_DEVICES=3)'],
    [{ CUDA_VISIBLE_DEVICES: 'GPU-8f6c2a1e' }, 0, 'cuda:0 (CUDA_VISIBLE_DEVICES=GPU-8f6c2a1e)'],
    // Slurm: one step, four tasks sharing four GPUs without per-task binding.
    [{ CUDA_VISIBLE_DEVICES: '0,1,2,3', SLURM_LOCALID: '2', SLURM_STEP_GPUS: '0,1,2,3' }, 2, 'cuda:2 (CUDA_VISIBLE_DEVICES=0,1,2,3 SLURM_LOCALID=2)'],
    [{ CUDA_VISIBLE_DEVICES: '4,5', SLURM_LOCALID: '3' }, 1, 'cuda:1 (CUDA_VISIBLE_DEVICES=4,5 SLURM_LOCALID=3)'],
    // Slurm with --gpus-per-task=1: the task's own GPU, index 0 whatever SLURM_LOCALID says.
    [{ CUDA_VISIBLE_DEVICES: '5', SLURM_LOCALID: '1' }, 0, 'cuda:0 (CUDA_VISIBLE_DEVICES=5)'],
    [{ SLURM_STEP_GPUS: '6', SLURM_JOB_GPUS: '6,7' }, 0, 'cuda:0 (SLURM_STEP_GPUS=6)'],
    [{ SLURM_JOB_GPUS: '1' }, 0, 'cuda:0 (SLURM_JOB_GPUS=1)'],
    // Kubernetes' NVIDIA device plugin: the container sees only its GPU.
    [{ NVIDIA_VISIBLE_DEVICES: 'GPU-0d3f' }, 0, 'cuda:0 (NVIDIA_VISIBLE_DEVICES=GPU-0d3f)'],
    [{ NVIDIA_VISIBLE_DEVICES: 'all' }, 0, 'cuda:0 (NVIDIA_VISIBLE_DEVICES=all)'],
  ];
  for (const [vars, id, label] of cases) {
    assert.deepEqual(selectDevice(['cuda', 'cpu'], vars), { provider: 'cuda', deviceId: id, label }, JSON.stringify(vars));
    assert.deepEqual(executionProviders(['cuda', 'cpu'], vars), [{ name: 'cuda', deviceId: id }, 'cpu']);
  }
  assert.deepEqual(selectDevice(['tensorrt', 'cuda', 'cpu'], { CUDA_VISIBLE_DEVICES: '1' }).label, 'tensorrt:0 (CUDA_VISIBLE_DEVICES=1)');
  assert.deepEqual(executionProviders(['tensorrt', 'cuda', 'cpu'], { CUDA_VISIBLE_DEVICES: '0,1', SLURM_LOCALID: '1' }), [{ name: 'tensorrt', deviceId: 1 }, { name: 'cuda', deviceId: 1 }, 'cpu']);
  // A CPU config ignores GPU bindings.
  assert.deepEqual(selectDevice(['cpu'], { CUDA_VISIBLE_DEVICES: '3' }), { provider: 'cpu', deviceId: null, label: 'cpu' });
  assert.deepEqual(executionProviders(['cpu'], { CUDA_VISIBLE_DEVICES: '' }), ['cpu']);
});

test('device choice: a binding that hides every GPU is a user error naming the variable', () => {
  for (const [name, value] of [['CUDA_VISIBLE_DEVICES', ''], ['CUDA_VISIBLE_DEVICES', '-1'], ['CUDA_VISIBLE_DEVICES', 'NoDevFiles'], ['NVIDIA_VISIBLE_DEVICES', 'void'], ['NVIDIA_VISIBLE_DEVICES', 'none']]) {
    assert.throws(
      () => selectDevice(['cuda', 'cpu'], { [name]: value }),
      (e: Error) => isUserError(e) && e.message.startsWith(`${name}=${JSON.stringify(value)} hides every GPU from this worker, but runtime.execution_providers asks for cuda`),
    );
  }
});
