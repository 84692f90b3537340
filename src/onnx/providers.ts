import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { UserError } from '../errors.ts';
import { OnnxBuilder } from './builder.ts';

/**
 * Which onnxruntime execution providers this install can load, and which GPU a worker uses.
 *
 * onnxruntime-node ships the CPU provider inside the package; on Linux x64 the CUDA and TensorRT
 * providers are compiled into its binding but their libraries (libonnxruntime_providers_*.so) are
 * downloaded by the package's install script, and load only when the CUDA 12 and cuDNN 9 libraries are
 * on the library path. onnxruntime does not fall back to the CPU when a listed provider cannot load (a
 * session with [cuda, cpu] fails): `cpu` after `cuda` only takes the operators CUDA has no kernel for.
 * pairgen keeps that rule: every provider a config lists must load.
 */

/** The providers that need a GPU device id. */
const GPU_PROVIDERS = new Set(['cuda', 'tensorrt']);

const PLATFORM = `${process.platform}/${process.arch}`;
const requireFromHere = createRequire(import.meta.url);
const ORT_MAIN = requireFromHere.resolve('onnxruntime-node');

/** The ONNXRUNTIME_NODE_INSTALL value that downloads the CUDA and TensorRT provider libraries (onnxruntime-node 1.30 knows no other). */
export const CUDA_INSTALL = 'cuda12';
/**
 * onnxruntime-node's own install script, run directly: `npm ci` runs it as a postinstall script, but
 * newer npm releases skip dependencies' install scripts unless package.json allows them.
 */
export const INSTALL_SCRIPT = join(dirname(ORT_MAIN), '..', 'script', 'install.js');
export const INSTALL_COMMAND = `ONNXRUNTIME_NODE_INSTALL=${CUDA_INSTALL} node ${INSTALL_SCRIPT}`;
/** Where onnxruntime-node keeps its native libraries for this platform (and the downloaded providers). */
export const ORT_BIN_DIR = join(dirname(ORT_MAIN), '..', 'bin', 'napi-v6', process.platform, process.arch);

/** The files the install script downloads for a provider (onnxruntime-node's script/install-metadata.js). */
const PROVIDER_FILES: Record<string, string[]> = {
  cuda: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'],
  tensorrt: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_tensorrt.so'],
};

export interface ProviderStatus {
  name: string;
  /** A session with this provider (alone) opened here. */
  loadable: boolean;
  /** Why not, and how to make it loadable; null when loadable. */
  problem: string | null;
}

/** The providers this onnxruntime-node binding was built with (loadable or not). */
export function builtProviders(): string[] {
  return ort.listSupportedBackends().map((b) => b.name);
}

/**
 * Open a one-operator model with each provider, in a child process: a provider library that fails to
 * load writes the reason (the missing .so) to the native stderr, and a broken GPU driver must not take
 * the caller down. `cpu` needs no probe (it is inside the binding this process already loaded).
 */
export async function probeProviders(names: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProviderStatus[]> {
  const built = builtProviders();
  const statuses = new Map<string, ProviderStatus>();
  const toProbe: string[] = [];
  for (const name of new Set(names)) {
    if (name === 'cpu') statuses.set(name, { name, loadable: true, problem: null });
    else if (!built.includes(name)) statuses.set(name, { name, loadable: false, problem: `this onnxruntime-node build (${PLATFORM}) has no ${name} provider (it has ${built.join(', ')})${GPU_PROVIDERS.has(name) ? `; CUDA and TensorRT are in its Linux x64 build only` : ''}` });
    else {
      const missing = (PROVIDER_FILES[name] ?? []).filter((f) => !existsSync(join(ORT_BIN_DIR, f)));
      if (missing.length) statuses.set(name, { name, loadable: false, problem: notInstalled(name, missing) });
      else toProbe.push(name);
    }
  }
  if (toProbe.length) for (const s of await probeInChild(toProbe, env)) statuses.set(s.name, s);
  return names.filter((n, i) => names.indexOf(n) === i).map((n) => statuses.get(n)!);
}

function notInstalled(name: string, missing: string[]): string {
  return (
    `the ${name} provider is not installed: ${missing.join(', ')} missing from ${ORT_BIN_DIR} (npm runs the package's install script that downloads them unless ONNXRUNTIME_NODE_INSTALL=skip, as this project's Makefile and .npmrc set, or unless npm skips dependencies' install scripts). ` +
    `Install it with \`${INSTALL_COMMAND}\` (downloads Microsoft.ML.OnnxRuntime.Gpu.Linux from api.nuget.org), then put the CUDA 12 and cuDNN 9 libraries${name === 'tensorrt' ? ' and TensorRT 10' : ''} on LD_LIBRARY_PATH, or use the CUDA worker image (Dockerfile, docs/gpu.md)`
  );
}

// The probe child: CommonJS on purpose (no tsx), so it starts in a fraction of a second.
const PROBE_SCRIPT = `
const ort = require(process.env.PAIRGEN_ORT_MAIN);
const [model, ...providers] = process.argv.slice(1);
(async () => {
  for (const p of providers) {
    const ep = JSON.parse(p);
    process.stderr.write('\\n@@probe ' + ep.name + '\\n');
    let error = null;
    try { await (await ort.InferenceSession.create(model, { executionProviders: [ep] })).release(); }
    catch (e) { error = String(e && e.message || e); }
    process.stdout.write(JSON.stringify({ name: ep.name, error }) + '\\n');
  }
})();
`;

/** probeProviders' session test alone, without its checks of the build and the installed files (tests use it to read onnxruntime's own loader message). */
export async function probeInChild(names: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProviderStatus[]> {
  const dir = mkdtempSync(join(tmpdir(), 'pairgen-probe-'));
  try {
    const model = join(dir, 'add.onnx');
    writeFileSync(model, tinyModel());
    const device = selectDevice(names, env);
    const eps = names.map((name) => JSON.stringify(GPU_PROVIDERS.has(name) ? { name, deviceId: device.deviceId } : { name }));
    const { stdout, stderr, failure } = await new Promise<{ stdout: string; stderr: string; failure: string | null }>((res) => {
      execFile(process.execPath, ['-e', PROBE_SCRIPT, model, ...eps], { env: { ...env, PAIRGEN_ORT_MAIN: ORT_MAIN }, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
        res({ stdout, stderr, failure: err ? (err.signal ? `the probe process was killed by ${err.signal}` : err.message) : null }),
      );
    });
    const results = new Map<string, string | null>();
    for (const line of stdout.split('\n').filter(Boolean)) {
      const r = JSON.parse(line) as { name: string; error: string | null };
      results.set(r.name, r.error);
    }
    const native = nativeErrors(stderr);
    return names.map((name) => {
      if (!results.has(name)) return { name, loadable: false, problem: `opening a session with ${name} crashed the probe process (${failure ?? 'no result'}); ${native.get(name) ?? ''}`.trim() };
      const error = results.get(name)!;
      return { name, loadable: error === null, problem: error === null ? null : cannotLoad(name, shortReason(native.get(name) ?? error)) };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The native loader's reason per provider (e.g. "libcudnn.so.9: cannot open shared object file"), from the probe's stderr. */
function nativeErrors(stderr: string): Map<string, string> {
  const out = new Map<string, string>();
  // eslint-disable-next-line no-control-regex
  const clean = stderr.replace(/\x1b\[[0-9;]*m/g, '');
  for (const section of clean.split('\n@@probe ').slice(1)) {
    const [name, ...lines] = section.split('\n');
    const text = lines.join('\n');
    const loader = [...text.matchAll(/Failed to load library (\S+) with error: ([^\n]+)/g)].map((m) => m[2].trim());
    const other = lines.map((l) => l.trim()).find((l) => /error|fail/i.test(l));
    const reason = loader.length ? loader[loader.length - 1] : other;
    if (reason) out.set(name.trim(), reason);
  }
  return out;
}

/** onnxruntime's messages start with the source location of the failed check; the user needs the end. */
function shortReason(message: string): string {
  return message.replace(/^\/onnxruntime_src\/[\s\S]*? was (?:false|true)\. /, '').trim();
}

function cannotLoad(name: string, reason: string): string {
  if (GPU_PROVIDERS.has(name)) {
    return (
      `the ${name} provider is installed but does not load here: ${reason}. It needs an NVIDIA driver and GPU, the CUDA 12 runtime libraries and cuDNN 9 on LD_LIBRARY_PATH` +
      (name === 'tensorrt' ? ' and TensorRT 10 (libnvinfer.so.10, which the CUDA worker image does not have; docs/gpu.md)' : ' (docs/gpu.md; the CUDA worker image has them)')
    );
  }
  return `the ${name} provider does not load here: ${reason}`;
}

/** y = x + x on a [1] float tensor: the smallest model every provider runs. */
function tinyModel(): Uint8Array {
  const b = new OnnxBuilder({ opset: 17 });
  const x = b.input('x', 'float32', [1]);
  b.output(b.op('Add', [x, x], {}, 'y'), 'float32', [1]);
  return b.toBytes();
}

/**
 * Refuse a runtime whose providers do not all load here (exit 2, naming the provider and how to
 * install it); otherwise the device this process runs on. `where` names the config (file or run.json).
 */
export async function requireProviders(providers: string[], where: string, env: NodeJS.ProcessEnv = process.env): Promise<Device> {
  const device = selectDevice(providers, env);
  const statuses = await probeProviders(providers, env);
  const missing = statuses.filter((s) => !s.loadable);
  if (missing.length) throw new UserError(`${where}: runtime.execution_providers: ${missing.map((s) => `${s.name}: ${s.problem}`).join('; ')}`);
  return device;
}

export interface Device {
  /** The GPU provider the config runs on, or 'cpu'. */
  provider: string;
  /** The device index as onnxruntime sees it (inside the visible devices); null on the CPU. */
  deviceId: number | null;
  /** For logs, e.g. "cuda:0 (CUDA_VISIBLE_DEVICES=3)" or "cpu". */
  label: string;
}

/** The variables that bind GPUs to a task, in the order they are trusted: CUDA's own, then Slurm's, then the NVIDIA container runtime's (Kubernetes' device plugin). */
const BINDING_VARIABLES = ['CUDA_VISIBLE_DEVICES', 'SLURM_STEP_GPUS', 'SLURM_JOB_GPUS', 'NVIDIA_VISIBLE_DEVICES'] as const;

/**
 * The GPU this worker uses. The engine binds GPUs to a task by making only those visible
 * (CUDA_VISIBLE_DEVICES from Slurm's GRES or by hand, Slurm's cgroup for SLURM_STEP_GPUS/SLURM_JOB_GPUS,
 * the container runtime for NVIDIA_VISIBLE_DEVICES), and onnxruntime counts from 0 inside them. When
 * several GPUs are visible to several tasks of one Slurm step, task SLURM_LOCALID takes the
 * (SLURM_LOCALID mod n)-th. A binding that hides every GPU is refused: a GPU config would fail anyway.
 */
export function selectDevice(providers: string[], env: NodeJS.ProcessEnv = process.env): Device {
  const provider = providers.find((p) => GPU_PROVIDERS.has(p));
  if (!provider) return { provider: providers[0] ?? 'cpu', deviceId: null, label: providers[0] ?? 'cpu' };
  const variable = BINDING_VARIABLES.find((v) => env[v] !== undefined);
  if (!variable) return { provider, deviceId: 0, label: `${provider}:0 (no GPU binding in the environment: the first GPU of the machine)` };
  const value = env[variable]!.trim();
  if (value === '' || value === '-1' || /^(none|void|NoDevFiles)$/i.test(value)) {
    throw new UserError(`${variable}=${JSON.stringify(env[variable])} hides every GPU from this worker, but runtime.execution_providers asks for ${provider}; give the task a GPU (Slurm: --gpus-per-task=1; Kubernetes: resources.limits nvidia.com/gpu: 1) or run with execution_providers: [cpu]`);
  }
  const visible = value === 'all' ? null : value.split(',').filter(Boolean);
  const localId = env.SLURM_LOCALID;
  let deviceId = 0;
  let binding = `${variable}=${value}`;
  if (visible && visible.length > 1 && localId !== undefined && /^\d+$/.test(localId)) {
    deviceId = Number(localId) % visible.length;
    binding += ` SLURM_LOCALID=${localId}`;
  }
  return { provider, deviceId, label: `${provider}:${deviceId} (${binding})` };
}

/** onnxruntime's executionProviders for a config: GPU providers get this worker's device id. */
export function executionProviders(providers: string[], env: NodeJS.ProcessEnv = process.env): (string | { name: string; deviceId: number })[] {
  const device = selectDevice(providers, env);
  return providers.map((name) => (GPU_PROVIDERS.has(name) && device.deviceId !== null ? { name, deviceId: device.deviceId } : name));
}

/** One line for `pairgen check`: what this install can load, beside what the config asks for. */
export function formatProviderReport(statuses: ProviderStatus[]): string {
  const yes = statuses.filter((s) => s.loadable).map((s) => s.name);
  const no = statuses.filter((s) => !s.loadable).map((s) => s.name);
  return `providers loadable here: ${yes.join(', ') || 'none'}${no.length ? `; not loadable: ${no.join(', ')}` : ''}`;
}
