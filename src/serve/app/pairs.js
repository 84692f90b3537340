// The Pair browser (a filtered, sorted, paged grid of pairs) and a pair's own page (full-size images,
// every column, seed and lineage; a reject drawn again from its seed on request).
import { ApiError, api, errorBox, fmtInt, fmtNum, h, scoreColumn } from './dom.js';

const PER_PAGE = 24;
const SPLITS = ['train', 'validation', 'test'];
/** Columns of a listed row that are not worth sorting by or showing as a score. */
const NOT_SORTABLE = new Set(['file', 'file_row', 'image_format', 'instruction', 'pair_id']);

/** What the browser learnt once: categories and the scores the rules read (from /api/rules), the sortable columns. */
const known = { rules: null, columns: null, lastBrowse: '#/pairs' };

async function rules(signal) {
  known.rules ??= api('/api/rules', { signal }).catch((e) => {
    known.rules = null;
    throw e;
  });
  return known.rules;
}

/** The scores the rules read, as columns: the ones a card shows beside identity_similarity. */
function ruleColumns(r) {
  const names = new Set();
  for (const list of Object.values(r.categories ?? {})) for (const rule of list) for (const c of rule.conditions) names.add(scoreColumn(c.score));
  names.delete('identity_similarity');
  return [...names].sort();
}

function query(params) {
  return {
    where: params.get('where') ?? '',
    category: params.get('category') ?? '',
    verdict: params.get('verdict') ?? '',
    split: params.get('split') ?? '',
    sort: params.get('sort') ?? 'index',
    order: params.get('order') ?? 'asc',
    page: Math.max(0, Number.parseInt(params.get('page') ?? '0', 10) || 0),
    per_page: Number.parseInt(params.get('per_page') ?? String(PER_PAGE), 10) || PER_PAGE,
  };
}

/** The hash of the browser with `q` (defaults left out, so links stay short). */
function browseHash(q) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === '' || (k === 'sort' && v === 'index') || (k === 'order' && v === 'asc') || (k === 'page' && v === 0) || (k === 'per_page' && v === PER_PAGE)) continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return `#/pairs${s ? `?${s}` : ''}`;
}

export async function renderPairs({ view, params, signal }) {
  const q = query(params);
  known.lastBrowse = browseHash(q);
  // data-hash and data-loaded say which query the page shows and that its answer is in (tests wait on them).
  const page = h('section', { testid: 'page-pairs', 'data-hash': location.hash }, h('h1', null, 'Pairs'));
  const results = h('div', { class: 'results', testid: 'pairs-results' }, h('p', { class: 'muted' }, 'Loading pairs…'));
  let ruleInfo = null;
  try {
    ruleInfo = await rules(signal);
  } catch (e) {
    if (signal.aborted) return;
    page.append(errorBox(e, 'the rules (categories for the filter)'));
  }
  page.append(filterForm(q, ruleInfo), results);
  view.replaceChildren(page);

  const apiParams = new URLSearchParams();
  for (const k of ['where', 'category', 'verdict', 'split', 'sort', 'order']) if (q[k]) apiParams.set(k, q[k]);
  apiParams.set('page', String(q.page));
  apiParams.set('per_page', String(q.per_page));
  let answer;
  try {
    answer = await api(`/api/pairs?${apiParams}`, { signal });
  } catch (e) {
    if (signal.aborted) return;
    results.replaceChildren(errorBox(e, 'the pairs'), h('p', null, h('a', { href: '#/pairs' }, 'Clear the filter')));
    results.dataset.loaded = 'error';
    return;
  }
  if (answer.rows.length) {
    const cols = Object.keys(answer.rows[0]).filter((c) => !NOT_SORTABLE.has(c));
    known.columns = [...new Set([...(known.columns ?? []), ...cols])];
    // The sort select learns the columns from the first answer.
    page.querySelector('[data-testid="filter-sort"]')?.replaceWith(sortSelect(q));
  }
  const shownAnyway = ['index', 'seed', 'category', 'split', 'accepted', 'reject_reason'];
  const keyColumns = [...new Set(['identity_similarity', ...(ruleInfo ? ruleColumns(ruleInfo) : []), ...(shownAnyway.includes(q.sort) ? [] : [q.sort])])];
  results.replaceChildren(
    h('p', { class: 'summary' }, h('span', { testid: 'pairs-total' }, fmtInt(answer.total)), ` pair${answer.total === 1 ? '' : 's'} match`, answer.total ? `; showing ${fmtInt(q.page * answer.per_page + 1)}–${fmtInt(q.page * answer.per_page + answer.rows.length)}` : ''),
    answer.rows.length ? h('div', { class: 'grid', testid: 'pairs-grid' }, answer.rows.map((row) => card(row, keyColumns))) : h('p', { class: 'muted', testid: 'pairs-empty' }, 'No pair matches this filter.'),
    pager(q, answer),
  );
  results.dataset.loaded = 'rows';
}

function filterForm(q, ruleInfo) {
  const categories = ruleInfo ? Object.keys(ruleInfo.categories ?? {}) : q.category ? [q.category] : [];
  const where = h('input', { type: 'search', name: 'where', value: q.where, placeholder: "a predicate, e.g. edit_magnitude < 0.05 and reject_reason is null", testid: 'filter-where', class: 'where', spellcheck: 'false', 'aria-label': 'filter predicate' });
  const select = (name, options, label) => h('label', null, `${label} `, h('select', { name, testid: `filter-${name}` }, options.map(([v, text]) => h('option', { value: v, selected: q[name] === v }, text))));
  const form = h(
    'form',
    { class: 'filters', testid: 'filter-form' },
    h('div', { class: 'where-row' }, where, h('button', { type: 'submit', testid: 'filter-apply' }, 'Apply')),
    h(
      'div',
      { class: 'controls' },
      select('category', [['', 'all'], ...categories.map((c) => [c, c])], 'category'),
      select('verdict', [['', 'all'], ['accepted', 'accepted'], ['rejected', 'rejected']], 'verdict'),
      select('split', [['', 'all'], ...SPLITS.map((s) => [s, s])], 'split'),
      sortSelect(q),
      select('order', [['asc', 'ascending'], ['desc', 'descending']], 'order'),
      select('per_page', [...new Set([24, 48, 96, 200, q.per_page])].sort((a, b) => a - b).map((n) => [String(n), String(n)]), 'per page'),
    ),
    h('p', { class: 'muted small' }, 'The predicate is SQL over the manifest columns, as `pairgen query --where` takes it (e.g. ', h('code', null, "category = 'style' and identity_similarity < 0.7"), ').'),
  );
  const apply = () => {
    const f = new FormData(form);
    const next = { ...q, page: 0 };
    for (const k of ['where', 'category', 'verdict', 'split', 'sort', 'order']) next[k] = String(f.get(k) ?? '').trim();
    next.per_page = Number(f.get('per_page')) || PER_PAGE;
    next.sort ||= 'index';
    next.order ||= 'asc';
    location.hash = browseHash(next);
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    apply();
  });
  form.addEventListener('change', (e) => e.target.tagName === 'SELECT' && apply());
  // per_page is a number in q, text in the select.
  form.querySelector('[name="per_page"]').value = String(q.per_page);
  return form;
}

function sortSelect(q) {
  const cols = [...new Set(['index', ...(known.columns ?? []), q.sort])];
  return h('label', { testid: 'filter-sort' }, 'sort by ', h('select', { name: 'sort', testid: 'filter-sort-select' }, cols.map((c) => h('option', { value: c, selected: c === q.sort }, c))));
}

function pager(q, answer) {
  const last = Math.max(0, answer.pages - 1);
  const link = (page, text, testid, enabled) => (enabled ? h('a', { class: 'button', href: browseHash({ ...q, page }), testid }, text) : h('span', { class: 'button disabled', testid, 'aria-disabled': 'true' }, text));
  return h(
    'nav',
    { class: 'pager' },
    link(0, '« first', 'first-page', q.page > 0),
    link(q.page - 1, '‹ previous', 'prev-page', q.page > 0),
    h('span', { testid: 'page-info' }, `page ${fmtInt(answer.pages ? q.page + 1 : 0)} of ${fmtInt(answer.pages)}`),
    link(q.page + 1, 'next ›', 'next-page', q.page < last),
    link(last, 'last »', 'last-page', q.page < last),
  );
}

const imageUrl = (id, which) => `/api/pairs/${encodeURIComponent(id)}/${which}`;

function card(row, keyColumns) {
  const accepted = row.accepted === true;
  return h(
    'a',
    { class: `card ${accepted ? 'accepted' : 'rejected'}`, href: `#/pair/${encodeURIComponent(row.pair_id)}`, testid: 'pair-card', 'data-pair-id': row.pair_id },
    accepted
      ? h('div', { class: 'thumbs' }, h('img', { src: imageUrl(row.pair_id, 'source'), alt: 'source', loading: 'lazy' }), h('img', { src: imageUrl(row.pair_id, 'edited'), alt: 'edited', loading: 'lazy' }))
      : h('div', { class: 'thumbs none' }, h('span', null, 'rejected: no images stored', h('br'), 'open to draw it again')),
    h('div', { class: 'instruction', title: row.instruction }, row.instruction),
    h('div', { class: 'meta' }, `${row.category} · ${row.split ?? '—'} · #${row.index}`),
    h('div', { class: `verdict ${accepted ? 'accepted' : 'rejected'}`, testid: 'pair-verdict' }, accepted ? 'accepted' : `rejected: ${row.reject_reason ?? '—'}`, row.duplicate_of ? h('span', { class: 'dup' }, ' · near-duplicate') : null),
    h('dl', { class: 'scores' }, keyColumns.filter((c) => c in row).map((c) => [h('dt', null, c), h('dd', { 'data-column': c }, fmtNum(row[c]))])),
  );
}

export async function renderPair({ view, match, signal }) {
  const id = decodeURIComponent(match[1]);
  view.replaceChildren(h('p', { class: 'muted' }, `Loading pair ${id}…`));
  let pair;
  try {
    pair = await api(`/api/pairs/${encodeURIComponent(id)}`, { signal });
  } catch (e) {
    if (signal.aborted) return;
    view.replaceChildren(h('section', { testid: 'page-pair' }, back(), errorBox(e, `pair ${id}`)));
    return;
  }
  const row = pair.row;
  const accepted = row.accepted === true;
  const page = h(
    'section',
    { testid: 'page-pair', 'data-pair-id': row.pair_id },
    back(),
    h('h1', { testid: 'pair-instruction' }, row.instruction ?? row.pair_id),
    h('p', { class: 'muted' }, `pair ${row.pair_id} · ${row.category} · ${row.split ?? '—'} · candidate #${row.index} · shard ${row.shard}`),
    h('p', { class: `banner ${accepted ? 'ok' : 'bad'}`, testid: 'pair-verdict' }, accepted ? 'Accepted' : `Rejected: ${row.reject_reason ?? '—'}`, row.duplicate_of ? [' · near-duplicate of ', h('a', { href: `#/pair/${row.duplicate_of}` }, row.duplicate_of)] : null),
  );
  page.append(images(pair, signal));
  const ruleInfo = await rules(signal).catch(() => null);
  if (signal.aborted) return;
  page.append(
    h('h2', null, 'What the verdict read'),
    h(
      'dl',
      { class: 'facts', testid: 'pair-evidence' },
      fact('identity similarity', `${fmtNum(row.identity_similarity)} (threshold ${fmtNum(row.identity_threshold)})`),
      (ruleInfo?.categories?.[row.category] ?? []).map((r) => fact(`rule ${r.name}`, [h('code', null, r.text), ': ', r.conditions.map((c) => `${c.score} = ${fmtNum(row[scoreColumn(c.score)])}`).join(', ')])),
    ),
  );
  page.append(
    h('h2', null, 'Prompt, seed and lineage'),
    h(
      'dl',
      { class: 'facts', testid: 'pair-facts' },
      fact('instruction', row.instruction),
      fact('source prompt', row.source_prompt),
      fact('target prompt', row.target_prompt),
      fact('seed', h('code', { testid: 'pair-seed' }, String(row.seed))),
      fact('prompt', `${row.prompt_id} (sample ${row.sample_index})`),
      fact('teacher', row.teacher),
      fact('stored in', row.file ? `${row.file}, row ${row.file_row}` : '—'),
      fact('parent pair', pair.lineage?.parent_pair_id ?? h('span', { class: 'muted' }, 'none: drawn in this run'), 'lineage-parent'),
      fact('changes from the parent', Object.keys(pair.lineage?.changes ?? {}).length ? h('pre', null, JSON.stringify(pair.lineage.changes, null, 2)) : h('span', { class: 'muted' }, 'none'), 'lineage-changes'),
    ),
    h('h2', null, 'Every column'),
    columnsTable(row),
  );
  view.replaceChildren(page);
}

function back() {
  return h('p', { class: 'back' }, h('a', { href: known.lastBrowse, testid: 'back-to-pairs' }, '← back to the pairs'));
}

function fact(name, value, testid) {
  return [h('dt', null, name), h('dd', { testid }, value ?? '—')];
}

function images(pair, signal) {
  const row = pair.row;
  const figure = (which, url) =>
    h(
      'figure',
      { class: 'full' },
      url ? h('img', { src: url, alt: which, testid: `image-${which}`, width: Math.max(row.width ?? 256, 256) }) : h('div', { class: 'placeholder', testid: `image-${which}`, style: `width:${Math.max(row.width ?? 256, 256)}px;height:${Math.max(row.height ?? 256, 256)}px` }, 'not stored'),
      h('figcaption', null, which, row.width ? h('span', { class: 'muted' }, ` ${row.width}×${row.height} ${row.image_format ?? ''}${row.width < 256 ? `, shown at ${fmtNum(256 / row.width)}×` : ''}`) : null),
    );
  const box = h('div', { class: 'pair-images', testid: 'pair-images' }, figure('source', pair.images?.source), figure('edited', pair.images?.edited));
  if (pair.stored) return box;
  const note = h('p', { class: 'muted', testid: 'regenerate-status' }, 'A rejected pair keeps no images. Drawing it again from its seed with the run’s teacher gives the same pictures the run judged.');
  const button = h('button', { type: 'button', testid: 'regenerate', class: 'primary' }, 'Regenerate from seed');
  button.addEventListener('click', async () => {
    button.disabled = true;
    note.replaceChildren(`Drawing pair ${row.pair_id} again from seed ${row.seed}… (the teacher runs on this machine; a few seconds)`);
    try {
      const urls = {};
      // One after the other: the second image comes from the same draw on the server.
      for (const which of ['source', 'edited']) urls[which] = await regenerated(pair.regenerate?.[which] ?? `${imageUrl(row.pair_id, which)}?regenerate=1`, signal);
      for (const which of ['source', 'edited']) {
        const img = h('img', { src: urls[which], alt: `${which} (regenerated)`, testid: `image-${which}`, width: Math.max(row.width ?? 256, 256) });
        box.querySelector(`[data-testid="image-${which}"]`).replaceWith(img);
      }
      box.classList.add('regenerated');
      box.prepend(h('div', { class: 'regenerated-mark', testid: 'regenerated-mark' }, 'REGENERATED', h('span', null, ` from seed ${row.seed}: drawn again now, not stored in the run`)));
      note.replaceChildren('Regenerated. These images are not part of the dataset; the run rejected this pair.');
      button.remove();
    } catch (e) {
      if (signal.aborted) return;
      note.replaceChildren(errorBox(e, 'the regenerated images'));
      button.disabled = false;
    }
  });
  return h('div', null, box, h('div', { class: 'regenerate' }, button, note));
}

/** An image drawn again on the server: an object URL, after checking the server says it was regenerated. */
async function regenerated(url, signal) {
  let res;
  try {
    res = await fetch(url, { signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `the server did not answer (${e.message})`, url);
  }
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw new ApiError(res.status, body?.error ?? `${res.status} ${res.statusText}`, url);
  }
  if (res.headers.get('X-Pairgen-Regenerated') !== '1') throw new ApiError(res.status, 'the server did not mark the image as regenerated', url);
  return URL.createObjectURL(await res.blob());
}

function columnsTable(row) {
  const value = (v) => (v !== null && typeof v === 'object' ? h('pre', null, JSON.stringify(v, null, 2)) : v === null || v === undefined ? h('span', { class: 'muted' }, 'null') : String(v));
  return h('table', { class: 'columns', testid: 'pair-columns' }, h('tbody', null, Object.entries(row).map(([k, v]) => h('tr', { 'data-column': k }, h('th', null, k), h('td', null, value(v))))));
}
