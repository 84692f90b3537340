import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument, isMap, type Document, type LineCounter } from 'yaml';
import { UserError } from '../errors.ts';
import { parseYamlBytes, parseYamlText, PROTOTYPE_KEYS, readBounded } from '../prompts/yaml.ts';
import { pipelineConfigSchema, type PipelineConfig } from './schema.ts';
import { checkStorageConfig } from '../store/config.ts';

export type { PipelineConfig, OutputConfig } from './schema.ts';
export { pipelineConfigSchema } from './schema.ts';

export interface LoadedConfig {
  config: PipelineConfig;
  /** Absolute path of the config file. */
  file: string;
}

/**
 * Read, override, default, validate and resolve a pipeline config.
 * `sets` are `key.path=value` strings (from --set); a value is read as a YAML scalar or flow
 * collection, so `--set identity.threshold=0.5` is a number and `--set runtime.execution_providers=[cuda,cpu]` a list.
 */
export function loadPipelineConfig(file: string, sets: string[] = []): LoadedConfig {
  const path = resolve(file);
  let bytes: Buffer;
  try {
    bytes = readBounded(path, file);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot read pipeline config ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const { doc, lines, value } = parseYamlBytes(bytes, file, { syntax: 'not valid YAML/JSON' });
  const raw = (value ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new UserError(`${file}: expected a mapping of keys at the top level, got ${Array.isArray(raw) ? 'a list' : typeof raw}`);
  const fromSet = new Set<string>();
  for (const assignment of sets) fromSet.add(applySet(raw, assignment));
  if (raw.name === undefined) raw.name = basename(path, extname(path)).replace(/[^A-Za-z0-9._-]/g, '-');
  const where = (keyPath: string[]) => (fromSet.has(keyPath.join('.')) ? ' (from --set)' : locate(doc, lines, keyPath));
  const nonFinite = firstNonFinite(raw);
  if (nonFinite) throw new UserError(`${file}${where(nonFinite.path)}: ${nonFinite.path.join('.')}: expected a finite number, got ${nonFinite.value}`);
  validate(raw, file, where);
  checkStorageConfig(raw.storage, file);
  resolvePaths(raw, pipelineConfigSchema, dirname(path));
  return { config: raw as unknown as PipelineConfig, file: path };
}

/** The first .inf / -.inf / .nan in the config (JSON cannot hold them: run.json would say null). */
function firstNonFinite(value: unknown, path: string[] = []): { path: string[]; value: string } | null {
  if (typeof value === 'number' && !Number.isFinite(value)) return { path, value: Number.isNaN(value) ? '.nan' : value > 0 ? '.inf' : '-.inf' };
  if (value === null || typeof value !== 'object') return null;
  for (const [k, v] of Object.entries(value)) {
    const found = firstNonFinite(v, [...path, k]);
    if (found) return found;
  }
  return null;
}

/** Apply one `a.b.c=value` override in place; returns the key path. */
function applySet(target: Record<string, unknown>, assignment: string): string {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new UserError(`--set ${assignment}: expected key.path=value`);
  const keyPath = assignment.slice(0, eq).trim();
  const keys = keyPath.split('.');
  if (keys.some((k) => k === '')) throw new UserError(`--set ${assignment}: empty key in "${keyPath}"`);
  const proto = keys.find((k) => PROTOTYPE_KEYS.has(k));
  if (proto) throw new UserError(`--set ${keyPath}: "${proto}" cannot be a config key`);
  const text = assignment.slice(eq + 1);
  let value: unknown = text;
  // A value is YAML when it parses as YAML (a number, a list...), else the text itself; either way it
  // passes the same limits as a config file (no prototype keys, bounded aliases).
  if (parseDocument(text).errors.length === 0) value = parseYamlText(text, `--set ${keyPath}`, { syntax: 'not valid YAML' }).value;
  let node: Record<string, unknown> = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (!Object.hasOwn(node, key) || next === undefined || next === null) node[key] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) throw new UserError(`--set ${keyPath}: "${key}" is not a section`);
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
  return keyPath;
}

function validate(raw: unknown, file: string, where: (keyPath: string[]) => string): void {
  const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false, verbose: true });
  ajv.addKeyword({ keyword: 'x-path' });
  ajv.addKeyword({ keyword: 'x-message' }); // a schema's own wording for a failed pattern / const
  const check = ajv.compile(pipelineConfigSchema);
  if (check(raw)) return;
  const err = pickError(check.errors ?? []);
  const keyPath = err.instancePath.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  let at = keyPath;
  let what: string;
  switch (err.keyword) {
    case 'additionalProperties': {
      const extra = String(err.params.additionalProperty);
      at = [...keyPath, extra];
      const allowed = Object.keys((err.parentSchema as { properties?: object }).properties ?? {});
      what = `unknown key; expected one of: ${allowed.join(', ')}`;
      break;
    }
    case 'required':
      at = [...keyPath, String(err.params.missingProperty)];
      what = 'required key is missing';
      break;
    case 'enum':
      what = `expected one of ${(err.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(err.data)}`;
      break;
    case 'type':
      what = `expected ${[err.params.type].flat().join(' or ')}, got ${describe(err.data)}`;
      break;
    default:
      what = `${(err.parentSchema as { 'x-message'?: string })['x-message'] ?? err.message}, got ${describe(err.data)}`;
  }
  throw new UserError(`${file}${where(at)}: ${at.join('.') || '(top level)'}: ${what}`);
}

/** Prefer the most specific error: unknown keys first, then the deepest path; `if`/`anyOf` noise last. */
function pickError(errors: ErrorObject[]): ErrorObject {
  const rank = (e: ErrorObject) => (e.keyword === 'additionalProperties' ? 0 : e.keyword === 'required' ? 1 : e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if' ? 3 : 2);
  return [...errors].sort((a, b) => rank(a) - rank(b) || b.instancePath.length - a.instancePath.length)[0];
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** ":line:col" of the deepest node of keyPath that exists in the file, or "". */
function locate(doc: Document, lines: LineCounter, keyPath: string[]): string {
  for (let n = keyPath.length; n > 0; n--) {
    const parentNode = n === 1 ? doc.contents : doc.getIn(keyPath.slice(0, n - 1), true);
    if (isMap(parentNode)) {
      const pair = parentNode.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === keyPath[n - 1]);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) {
        const pos = lines.linePos(range[0]);
        return `:${pos.line}:${pos.col}`;
      }
    }
  }
  return '';
}

/** Resolve every string value whose schema says `x-path: true` against the config file's folder. */
function resolvePaths(value: unknown, schema: unknown, base: string): void {
  const s = schema as { properties?: Record<string, unknown>; items?: unknown } | undefined;
  if (!s || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (typeof item === 'string' && (s.items as { 'x-path'?: boolean })?.['x-path']) value[i] = absolute(item, base);
      else resolvePaths(item, s.items, base);
    }
    return;
  }
  const obj = value as Record<string, unknown>;
  for (const [key, sub] of Object.entries(s.properties ?? {})) {
    const v = obj[key];
    if (typeof v === 'string' && (sub as { 'x-path'?: boolean })['x-path']) obj[key] = absolute(v, base);
    else resolvePaths(v, sub, base);
  }
}

function absolute(p: string, base: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) return p; // a URI (s3://, file://) is left as it is
  return isAbsolute(p) ? p : resolve(base, p);
}

/**
 * The config with every path-valued key cut to its last component: what identifies a run wherever
 * its files live (their contents are covered by the model and prompt digests in run.json).
 */
export function locationFree(config: PipelineConfig): PipelineConfig {
  const copy = structuredClone(config);
  cutPaths(copy, pipelineConfigSchema);
  return copy;
}

function cutPaths(value: unknown, schema: unknown): void {
  const s = schema as { properties?: Record<string, unknown> } | undefined;
  if (!s || value === null || typeof value !== 'object' || Array.isArray(value)) return;
  const obj = value as Record<string, unknown>;
  for (const [key, sub] of Object.entries(s.properties ?? {})) {
    const v = obj[key];
    if (typeof v === 'string' && (sub as { 'x-path'?: boolean })['x-path']) obj[key] = basename(v);
    else cutPaths(v, sub);
  }
}
