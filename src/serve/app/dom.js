// Small helpers every page uses: building elements, calling the JSON API, showing its errors, formatting numbers.

/** An element: h('a', { href, class, testid, onclick }, ...children). Text children are set as text, never as HTML. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  appendAll(el, children);
  return el;
}

export function setProps(el, props) {
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function appendAll(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** An answer of the API other than 2xx, with the server's one-line message. */
export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

/** GET a JSON endpoint; throws ApiError with the server's `{"error"}` line (or why there was no answer). */
export async function api(path, init) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json' }, ...init });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `the server did not answer (${e.message}); is \`pairgen serve\` still running?`, path);
  }
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: said below
  }
  if (!res.ok) throw new ApiError(res.status, body && typeof body.error === 'string' ? body.error : `${res.status} ${res.statusText}`, path);
  if (body === null) throw new ApiError(res.status, 'the server answered with something that is not JSON', path);
  return body;
}

/** A visible error: what could not be done, the server's message, and the request. */
export function errorBox(err, what) {
  const detail = err instanceof ApiError ? `${err.status ? `HTTP ${err.status}` : 'no answer'} from ${err.path}` : err.stack?.split('\n')[1]?.trim();
  return h(
    'div',
    { class: 'error', role: 'alert', testid: 'error' },
    h('strong', null, what ? `Could not load ${what}: ` : 'Error: '),
    h('span', { testid: 'error-message' }, err.message ?? String(err)),
    detail ? h('div', { class: 'muted small' }, detail) : null,
  );
}

export const intFormat = new Intl.NumberFormat('en-US');
export const fmtInt = (n) => (n === null || n === undefined ? '—' : intFormat.format(n));
export const fmtPct = (x, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(digits)}%`);

/** A score or threshold, short: 4 significant digits, no exponent for ordinary magnitudes. */
export function fmtNum(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return intFormat.format(v);
  const a = Math.abs(v);
  if (a >= 1000 || a < 1e-4) return v.toPrecision(4);
  return String(Number(v.toPrecision(4)));
}

export function fmtSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '—';
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

/** A definition-list style row of big numbers: [[label, value, testid, title?]]. */
export function figures(items) {
  return h(
    'div',
    { class: 'figures' },
    items.map(([label, value, testid, title]) => h('div', { class: 'figure', title }, h('div', { class: 'figure-value', testid }, value), h('div', { class: 'figure-label' }, label))),
  );
}

/** A table from a header row and rows of cells (elements or text); `numeric` columns are right-aligned. */
export function table(head, rows, { numeric = [], testid, rowTestid } = {}) {
  const cls = (i) => (numeric.includes(i) ? 'num' : null);
  return h(
    'table',
    { testid },
    h('thead', null, h('tr', null, head.map((c, i) => h('th', { class: cls(i) }, c)))),
    h('tbody', null, rows.map((r, k) => h('tr', { testid: rowTestid ? rowTestid(r, k) : null, class: r.className }, r.cells.map((c, i) => h('td', { class: cls(i) }, c))))),
  );
}

/** Wait `ms` after the last call before running `fn`. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Category colours, in the categories' sorted order. */
export const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#b279a2', '#e45756', '#72b7b2', '#eeca3b', '#9d755d', '#ff9da6', '#bab0ac'];
export function categoryColors(categories) {
  return Object.fromEntries([...categories].sort().map((c, i) => [c, PALETTE[i % PALETTE.length]]));
}

/** A score's manifest column: `edit.magnitude` → `edit_magnitude`. */
export const scoreColumn = (name) => name.replace(/\./g, '_');
