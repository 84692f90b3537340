// The What if page: a slider per identity threshold and per rule condition; every move asks /api/whatif
// (counted from the recorded scores, nothing drawn again) for the pairs kept and dropped per category, the
// filters' precision and recall on a demo run, and the `pairgen refilter` command that applies the change.
import { api, appendAll, categoryColors, debounce, errorBox, fmtInt, fmtPct, h, scoreColumn } from './dom.js';
import { histogram } from './charts.js';
import { ruleGroups } from './scores.js';

export async function renderWhatIf({ view, signal }) {
  view.replaceChildren(h('p', { class: 'muted' }, 'Reading the rules and the recorded scores…'));
  const [rules, scores] = await Promise.allSettled([api('/api/rules', { signal }), api('/api/scores', { signal })]);
  if (signal.aborted) return;
  const page = h('section', { testid: 'page-whatif' }, h('h1', null, 'What if'));
  if (rules.status === 'rejected') {
    view.replaceChildren(page, errorBox(rules.reason, 'the rules'));
    return;
  }
  const dists = scores.status === 'fulfilled' ? scoreDists(scores.value) : {};
  const categories = Object.keys(rules.value.categories ?? {}).sort();
  const knobs = buildKnobs(rules.value, dists, categories);
  const results = h('div', { class: 'whatif-results', testid: 'whatif-results' }, h('p', { class: 'muted' }, 'Counting…'));
  const command = h('div', { class: 'command', testid: 'refilter' });

  let pending = null;
  const update = async () => {
    pending?.abort();
    const controller = new AbortController();
    pending = controller;
    signal.addEventListener('abort', () => controller.abort(), { once: true });
    const sets = knobs.flatMap((k) => k.sets());
    const invalid = knobs.find((k) => k.problem());
    if (invalid) {
      results.replaceChildren(h('div', { class: 'error', testid: 'error' }, invalid.problem()));
      return;
    }
    results.classList.add('stale');
    try {
      const answer = await api(`/api/whatif?${new URLSearchParams(sets.map((s) => ['set', s]))}`, { signal: controller.signal });
      results.replaceChildren(counts(answer, categories), truth(answer));
      command.replaceChildren(commandBox(answer, sets));
    } catch (e) {
      if (e.name === 'AbortError' || controller.signal.aborted) return;
      results.replaceChildren(errorBox(e, 'the what-if counts'));
    } finally {
      if (pending === controller) results.classList.remove('stale');
    }
  };
  const later = debounce(update, 250);
  for (const k of knobs) k.onchange = later;

  const reset = h('button', { type: 'button', testid: 'whatif-reset' }, 'Reset to the run’s settings');
  reset.addEventListener('click', () => {
    for (const k of knobs) k.reset();
    void update();
  });
  appendAll(
    page,
    h('p', { class: 'muted' }, 'Move a threshold: the pairs this run would keep are counted again from the recorded scores with the same verdict as `pairgen refilter` (nothing is drawn or scored again).'),
    scores.status === 'rejected' ? errorBox(scores.reason, 'the score ranges (the sliders span 0 to twice each value)') : null,
    h(
      'div',
      { class: 'whatif' },
      h('div', { class: 'knobs' }, h('h2', null, 'Thresholds'), knobs.map((k) => k.element), reset),
      h('div', null, h('h2', null, 'Kept and dropped'), results, h('h2', null, 'Apply it'), command),
    ),
  );
  view.replaceChildren(page);
  await update();
}

/** Each score column's histogram by category (from /api/scores), identity_similarity among them. */
function scoreDists(scores) {
  const out = {};
  for (const sc of scores.scores ?? []) if (sc.edges?.length) out[sc.column] = sc;
  if (scores.identity?.edges?.length) out.identity_similarity = scores.identity;
  return out;
}

const rangeOf = (dist) => (dist ? [dist.edges[0], dist.edges[dist.edges.length - 1]] : null);

/** A small histogram of one score over some categories, stacked, with the knob's bounds at their current values. */
function miniChart(dist, categories, bounds) {
  if (!dist) return null;
  const colors = categoryColors(Object.keys(dist.counts ?? {}));
  const series = categories.map((c) => ({ name: c, color: colors[c], counts: dist.counts?.[c] ?? [] }));
  return histogram({ edges: dist.edges, series, bounds: bounds.filter((b) => Number.isFinite(b.value) && (b.op !== 'in' || Number.isFinite(b.high))), width: 420, height: 74, label: 'the score by category, with the threshold' });
}

/** One knob per identity threshold and per rule (a rule's conditions share it); each knows the --set it makes. */
function buildKnobs(rules, dists, categories) {
  const knobs = [];
  const id = rules.identity ?? {};
  if (id.enabled !== false && typeof id.threshold === 'number') {
    const own = id.category_thresholds ?? {};
    const global = categories.filter((c) => own[c] === undefined && id.effective_thresholds?.[c] === id.threshold);
    const note = global.length === 0 ? ' (every category here has its own)' : global.length === categories.length ? '' : ` (${global.join(', ')})`;
    const identity = dists.identity_similarity;
    knobs.push(thresholdKnob('identity.threshold', `identity threshold${note}`, id.threshold, [0, 1], 'identity-threshold', (v) => miniChart(identity, global.length ? global : categories, [{ op: '>=', value: v }])));
    for (const c of categories) {
      const t = id.effective_thresholds?.[c] ?? own[c] ?? id.threshold;
      knobs.push(thresholdKnob(`identity.category_thresholds.${c}`, `identity threshold of ${c}${global.includes(c) ? ' (now the global one)' : ''}`, t, [0, 1], `identity-${c}`, (v) => miniChart(identity, [c], [{ op: '>=', value: v }])));
    }
  }
  for (const g of ruleGroups(rules)) knobs.push(ruleKnob(g, dists, categories));
  return knobs;
}

/** A slider and a number box kept in step; `value()` is the number box's text as a number. */
function slider(initial, [lo, hi], testid, onInput) {
  const low = Math.min(lo, initial);
  const high = Math.max(hi, initial);
  const step = high > low ? (high - low) / 200 : 0.01;
  const range = h('input', { type: 'range', min: low, max: high, step: 'any', value: initial, testid: `${testid}-range`, 'aria-label': testid });
  const box = h('input', { type: 'number', step, value: String(initial), testid, class: 'num-input', 'aria-label': `${testid} value` });
  range.addEventListener('input', () => {
    box.value = String(Number(Number(range.value).toPrecision(3)));
    onInput();
  });
  box.addEventListener('input', () => {
    if (Number.isFinite(Number(box.value)) && box.value.trim() !== '') range.value = box.value;
    onInput();
  });
  return {
    element: h('span', { class: 'slider' }, range, box),
    value: () => (box.value.trim() === '' ? NaN : Number(box.value)),
    text: () => box.value.trim(),
    reset: () => {
      box.value = String(initial);
      range.value = String(initial);
    },
  };
}

function thresholdKnob(key, label, initial, range, testid, chart) {
  const knob = { onchange: () => {} };
  const slot = h('div', { class: 'knob-chart' });
  const redraw = () => slot.replaceChildren(chart(sl.value()) ?? '');
  const sl = slider(initial, range, testid, () => {
    el.classList.toggle('changed', sl.value() !== initial);
    redraw();
    knob.onchange();
  });
  const el = h('div', { class: 'knob', testid: `knob-${key}` }, h('div', { class: 'knob-label' }, label), sl.element, slot);
  redraw();
  return Object.assign(knob, {
    element: el,
    sets: () => (sl.value() !== initial && Number.isFinite(sl.value()) ? [`${key}=${sl.text()}`] : []),
    problem: () => (Number.isFinite(sl.value()) ? null : `${label}: enter a number`),
    reset: () => {
      sl.reset();
      el.classList.remove('changed');
      redraw();
    },
  });
}

function ruleKnob(group, dists, categories) {
  const knob = { onchange: () => {} };
  const changed = () => parts.some((p) => p.changed());
  const input = () => {
    el.classList.toggle('changed', changed());
    for (const p of parts) p.redraw();
    knob.onchange();
  };
  const parts = group.conditions.map((c, i) => {
    const col = scoreColumn(c.score);
    const span = rangeOf(dists[col]) ?? [Math.min(0, c.value), Math.max(1, 2 * Math.abs(c.high ?? c.value))];
    const slot = h('div', { class: 'knob-chart' });
    const id = `rule-${group.name}-${i}${group.categories.length < categories.length ? `-${group.categories.join('-')}` : ''}`;
    if (c.op === 'in') {
      const low = slider(c.value, span, `${id}-low`, input);
      const high = slider(c.high, span, `${id}-high`, input);
      return {
        element: h('div', null, h('div', { class: 'condition' }, h('code', null, `${c.score} in [`), low.element, h('code', null, ','), high.element, h('code', null, ']')), slot),
        redraw: () => slot.replaceChildren(miniChart(dists[col], group.categories, [{ op: 'in', value: low.value(), high: high.value() }]) ?? ''),
        text: () => `${c.score} in [${low.text()}, ${high.text()}]`,
        changed: () => low.value() !== c.value || high.value() !== c.high,
        problem: () => (!Number.isFinite(low.value()) || !Number.isFinite(high.value()) ? 'enter numbers' : low.value() > high.value() ? `the range [${low.text()}, ${high.text()}] is empty` : null),
        reset: () => (low.reset(), high.reset()),
      };
    }
    const one = slider(c.value, span, id, input);
    return {
      element: h('div', null, h('div', { class: 'condition' }, h('code', null, `${c.score} ${c.op}`), one.element), slot),
      redraw: () => slot.replaceChildren(miniChart(dists[col], group.categories, [{ op: c.op, value: one.value() }]) ?? ''),
      text: () => `${c.score} ${c.op} ${one.text()}`,
      changed: () => one.value() !== c.value,
      problem: () => (Number.isFinite(one.value()) ? null : 'enter a number'),
      reset: () => one.reset(),
    };
  });
  for (const p of parts) p.redraw();
  const everywhere = group.categories.length === categories.length;
  const el = h('div', { class: 'knob', testid: `knob-${group.name}` }, h('div', { class: 'knob-label' }, `rule ${group.name}`, h('span', { class: 'muted' }, everywhere ? ' (all categories)' : ` (${group.categories.join(', ')})`)), parts.map((p) => p.element));
  return Object.assign(knob, {
    element: el,
    sets: () => {
      if (!changed()) return [];
      const texts = parts.map((p) => p.text());
      const value = texts.length === 1 ? texts[0] : JSON.stringify(texts);
      // A rule every category has is a default rule; one some categories have is set per category.
      return everywhere ? [`rules.default.${group.name}=${value}`] : group.categories.map((c) => `rules.categories.${c}.${group.name}=${value}`);
    },
    problem: () => {
      const p = parts.map((x) => x.problem()).find(Boolean);
      return p ? `rule ${group.name}: ${p}` : null;
    },
    reset: () => {
      for (const p of parts) p.reset();
      for (const p of parts) p.redraw();
      el.classList.remove('changed');
    },
  });
}

function counts(answer, categories) {
  const row = (name, k, testid) =>
    h(
      'tr',
      { testid: `whatif-row-${testid}`, class: testid === 'all' ? 'total' : null },
      h('td', null, name),
      h('td', { class: 'num' }, fmtInt(k.candidates)),
      h('td', { class: 'num', testid: `whatif-now-${testid}` }, fmtInt(k.kept_now)),
      h('td', { class: 'num strong', testid: `whatif-kept-${testid}` }, fmtInt(k.kept)),
      h('td', { class: 'num' }, fmtPct(k.candidates ? k.kept / k.candidates : null)),
      h('td', { class: `num ${k.dropped ? 'minus' : ''}`, testid: `whatif-dropped-${testid}` }, k.dropped ? `−${fmtInt(k.dropped)}` : '0'),
      h('td', { class: `num ${k.added ? 'plus' : ''}`, testid: `whatif-added-${testid}` }, k.added ? `+${fmtInt(k.added)}` : '0'),
    );
  const cats = Object.keys(answer.categories ?? {}).length ? Object.keys(answer.categories) : categories;
  return h(
    'table',
    { testid: 'whatif-table' },
    h('thead', null, h('tr', null, ['category', 'candidates', 'kept now', 'would keep', 'acceptance', 'dropped', 'added'].map((t, i) => h('th', { class: i ? 'num' : null }, t)))),
    h('tbody', null, cats.map((c) => (answer.categories[c] ? row(c, answer.categories[c], c) : null)), row('all', answer.all, 'all')),
  );
}

/** Precision and recall before and after, when the teacher recorded the truth (demo runs). */
function truth(answer) {
  if (!answer.ground_truth) return h('p', { class: 'muted small' }, 'This run recorded no ground truth (only the demo’s reference teacher does), so no precision or recall.');
  const now = answer.ground_truth_now ?? {};
  const rows = [
    ['identity filter', 'identity'],
    ['edit rules', 'edit'],
    ['all rules (pair)', 'pair'],
  ].filter(([, k]) => answer.ground_truth[k]);
  const arrow = (a, b) => (a === undefined || a === null ? fmtPct(b) : fmtPct(a) === fmtPct(b) ? fmtPct(b) : `${fmtPct(a)} → ${fmtPct(b)}`);
  return h(
    'div',
    null,
    h('h3', null, 'Against ground truth'),
    h(
      'table',
      { testid: 'whatif-truth' },
      h('thead', null, h('tr', null, h('th', null, 'filter'), h('th', { class: 'num' }, 'precision'), h('th', { class: 'num' }, 'recall'))),
      h('tbody', null, rows.map(([name, k]) => h('tr', { testid: `truth-${k}` }, h('td', null, name), h('td', { class: 'num', testid: `truth-${k}-precision` }, arrow(now[k]?.precision, answer.ground_truth[k].precision)), h('td', { class: 'num', testid: `truth-${k}-recall` }, arrow(now[k]?.recall, answer.ground_truth[k].recall))))),
    ),
  );
}

function commandBox(answer, sets) {
  if (sets.length === 0) return h('p', { class: 'muted', testid: 'refilter-command-none' }, 'Move a threshold to get the `pairgen refilter` command that applies it.');
  const pre = h('pre', { class: 'command-text', testid: 'refilter-command' }, answer.command);
  const copy = h('button', { type: 'button', testid: 'copy-command' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(answer.command);
      copy.textContent = 'Copied';
    } catch {
      // No clipboard permission (a headless browser, say): select the text for Ctrl+C instead.
      getSelection().selectAllChildren(pre);
      copy.textContent = 'Selected: press Ctrl+C';
    }
    setTimeout(() => (copy.textContent = 'Copy'), 1500);
  });
  return h('div', null, pre, copy, h('p', { class: 'muted small' }, `refilter writes a new run: stored images are copied, only newly accepted pairs (${fmtInt(answer.all.added)} here) are drawn again from their seeds.`));
}
