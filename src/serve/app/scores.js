// The Acceptance and scores page: stats.json's acceptance by category and reject reason, the identity
// similarity with its thresholds, and the distribution of every recorded score with the rules' bounds.
import { api, appendAll, categoryColors, errorBox, figures, fmtInt, fmtNum, fmtPct, h, table } from './dom.js';
import { histogram, legend, stackedBars } from './charts.js';

const ACCEPTED = '#54a24b';
const REJECTED = '#e45756';

export async function renderScores({ view, signal, params }) {
  view.replaceChildren(h('p', { class: 'muted' }, 'Reading stats.json and the score distributions…'));
  const [stats, scores, rules] = await Promise.allSettled([api('/api/stats', { signal }), api('/api/scores', { signal }), api('/api/rules', { signal })]);
  if (signal.aborted) return;
  const page = h('section', { testid: 'page-scores' }, h('h1', null, 'Acceptance and scores'));
  const add = (...children) => appendAll(page, children);
  if (stats.status === 'rejected') add(errorBox(stats.reason, 'stats.json'));
  else add(acceptance(stats.value));
  if (rules.status === 'rejected') add(errorBox(rules.reason, 'the rules'));
  else add(rulesSection(rules.value));
  if (scores.status === 'rejected') add(errorBox(scores.reason, 'the score distributions'));
  else {
    const effective = rules.status === 'fulfilled' ? rules.value.identity?.effective_thresholds : null;
    if (scores.value.identity) add(identitySection(scores.value.identity, effective));
    add(distributions(scores.value, params.get('category') ?? ''));
  }
  view.replaceChildren(page);
}

function acceptance(stats) {
  const cats = Object.entries(stats.by_category ?? {});
  const reasons = Object.keys(stats.reject_reasons ?? {});
  const out = [
    figures([
      ['candidate pairs', fmtInt(stats.candidates), 'stat-candidates'],
      ['accepted', fmtInt(stats.accepted), 'stat-accepted'],
      ['rejected', fmtInt(stats.rejected), 'stat-rejected'],
      ['acceptance', fmtPct(stats.acceptance_rate), 'stat-acceptance'],
      ['shards', fmtInt(stats.shards), 'stat-shards'],
    ]),
    h('h2', null, 'Acceptance by category'),
    legend([{ name: 'accepted', color: ACCEPTED }, { name: 'rejected', color: REJECTED }]),
    stackedBars(
      cats.map(([cat, c]) => ({ label: cat, note: fmtPct(c.acceptance_rate), parts: [{ name: 'accepted', value: c.accepted, color: ACCEPTED }, { name: 'rejected', value: c.rejected, color: REJECTED }] })),
      { testid: 'acceptance-chart', label: 'accepted and rejected pairs by category' },
    ),
    table(
      ['category', 'candidates', 'accepted', 'rejected', 'acceptance', 'mean identity', 'reject reasons'],
      [
        ...cats.map(([cat, c]) => ({
          cat,
          cells: [
            h('a', { href: `#/pairs?category=${encodeURIComponent(cat)}` }, cat),
            h('span', { testid: `cat-candidates-${cat}` }, fmtInt(c.candidates)),
            h('span', { testid: `cat-accepted-${cat}` }, fmtInt(c.accepted)),
            h('a', { testid: `cat-rejected-${cat}`, href: `#/pairs?category=${encodeURIComponent(cat)}&verdict=rejected` }, fmtInt(c.rejected)),
            h('span', { testid: `cat-acceptance-${cat}` }, fmtPct(c.acceptance_rate)),
            fmtNum(c.identity_similarity?.mean ?? null),
            Object.entries(c.reject_reasons ?? {}).map(([r, n]) => `${r} ${fmtInt(n)}`).join(', '),
          ],
        })),
        { className: 'total', cat: 'all', cells: ['all', fmtInt(stats.candidates), fmtInt(stats.accepted), fmtInt(stats.rejected), fmtPct(stats.acceptance_rate), fmtNum(stats.identity_similarity?.mean ?? null), Object.entries(stats.reject_reasons ?? {}).map(([r, n]) => `${r} ${fmtInt(n)}`).join(', ')] },
      ],
      { numeric: [1, 2, 3, 4, 5], testid: 'acceptance-table', rowTestid: (r) => `category-row-${r.cat}` },
    ),
  ];
  if (reasons.length) {
    const colors = categoryColors(cats.map(([c]) => c));
    out.push(
      h('h2', null, 'Rejected, by reason'),
      legend(cats.map(([c]) => ({ name: c, color: colors[c] }))),
      stackedBars(
        reasons.map((r) => ({ label: r, note: fmtInt(stats.reject_reasons[r]), parts: cats.map(([c, n]) => ({ name: c, value: n.reject_reasons?.[r] ?? 0, color: colors[c] })) })),
        { testid: 'reasons-chart', label: 'rejected pairs by reason and category' },
      ),
      table(
        ['reason', ...cats.map(([c]) => c), 'all'],
        reasons.map((r) => ({
          reason: r,
          cells: [h('a', { href: `#/pairs?verdict=rejected&where=${encodeURIComponent(`reject_reason = '${r}'`)}` }, r), ...cats.map(([, c]) => fmtInt(c.reject_reasons?.[r] ?? 0)), h('span', { testid: `reason-${r}` }, fmtInt(stats.reject_reasons[r]))],
        })),
        { numeric: cats.map((_, i) => i + 1).concat(cats.length + 1), testid: 'reasons-table', rowTestid: (r) => `reason-row-${r.reason}` },
      ),
    );
  }
  out.push(groundTruth(stats));
  if (stats.near_duplicates) {
    const d = stats.near_duplicates;
    out.push(h('p', null, `Near-duplicate sources: ${fmtInt(d.marked)} rows marked (duplicate_of), ${fmtInt(d.accepted)} of them accepted; `, h('a', { href: `#/pairs?where=${encodeURIComponent('duplicate_of is not null')}` }, 'browse them'), '.'));
  }
  return out;
}

/** The filters' precision and recall against the reference teacher's truth (demo runs only). */
function groundTruth(stats) {
  const rows = [
    ['identity filter', stats.identity_vs_ground_truth],
    ['edit rules', stats.edit_vs_ground_truth?.edit],
    ['all rules (pair)', stats.edit_vs_ground_truth?.pair],
  ].filter(([, pr]) => pr);
  if (rows.length === 0) return null;
  return [
    h('h2', null, 'Filters against ground truth'),
    h('p', { class: 'muted small' }, 'This run’s teacher records what it really did (the demo’s reference teacher): how well the verdict finds the pairs that kept the person and made the asked edit.'),
    table(
      ['filter', 'precision', 'recall', 'kept & accepted', 'bad & accepted', 'kept & rejected', 'bad & rejected'],
      rows.map(([name, pr]) => ({ cells: [name, fmtPct(pr.precision), fmtPct(pr.recall), fmtInt(pr.truePositives), fmtInt(pr.falsePositives), fmtInt(pr.falseNegatives), fmtInt(pr.trueNegatives)] })),
      { numeric: [1, 2, 3, 4, 5, 6], testid: 'ground-truth' },
    ),
  ];
}

/** Every rule by the categories it applies to. */
function rulesSection(rules) {
  const groups = ruleGroups(rules);
  const id = rules.identity ?? {};
  return [
    h('h2', null, 'Rules'),
    table(
      ['rule', 'condition', 'categories'],
      [
        ...(id.enabled === false ? [] : [{ cells: ['identity', `identity.similarity >= threshold (${fmtNum(id.threshold)})`, Object.entries(id.effective_thresholds ?? {}).map(([c, t]) => `${c} ${fmtNum(t)}`).join(', ')] }]),
        ...groups.map((g) => ({ cells: [g.name, h('code', null, g.text), g.categories.length === Object.keys(rules.categories).length ? 'all' : g.categories.join(', ')] })),
      ],
      { testid: 'rules-table' },
    ),
  ];
}

/** Rules shared by categories: one entry per (name, text) with its categories. */
export function ruleGroups(rules) {
  const groups = new Map();
  for (const [cat, list] of Object.entries(rules.categories ?? {})) {
    for (const r of list) {
      const key = `${r.name}\u0000${r.text}`;
      if (!groups.has(key)) groups.set(key, { name: r.name, text: r.text, conditions: r.conditions, categories: [] });
      groups.get(key).categories.push(cat);
    }
  }
  return [...groups.values()];
}

function identitySection(identity, effective) {
  const cats = Object.keys(identity.counts ?? {}).sort();
  const colors = categoryColors(cats);
  return [
    h('h2', null, 'Identity similarity'),
    h('p', { class: 'muted small' }, 'Cosine similarity of the source and edited faces by category; a pair below its category’s threshold (dashed) is rejected as identity_below_threshold.'),
    h(
      'div',
      { class: 'chart-grid', testid: 'identity-charts' },
      cats.map((cat) => {
        const thresholds = effective?.[cat] !== undefined ? [effective[cat]] : identity.thresholds?.[cat] ?? [];
        const n = (identity.counts[cat] ?? []).reduce((a, b) => a + b, 0);
        return h(
          'div',
          { class: 'chart-card' },
          h('div', { class: 'chart-title' }, cat, h('span', { class: 'muted' }, ` ${fmtInt(n)} pairs${identity.nulls?.[cat] ? `, ${fmtInt(identity.nulls[cat])} without a face` : ''}`)),
          histogram({ edges: identity.edges, series: [{ name: cat, color: colors[cat], counts: identity.counts[cat] ?? [] }], bounds: thresholds.map((t) => ({ op: '>=', value: t, label: `threshold ${fmtNum(t)}` })), width: 300, label: `identity similarity of ${cat}`, testid: `identity-${cat}` }),
        );
      }),
    ),
  ];
}

/** Every score's histogram, categories stacked (or one category), grouped by scorer. */
function distributions(scores, only) {
  const cats = scores.categories ?? [];
  const colors = categoryColors(cats);
  const shown = only && cats.includes(only) ? [only] : cats;
  const select = h('select', { testid: 'scores-category', onchange: (e) => (location.hash = `#/scores${e.target.value ? `?category=${encodeURIComponent(e.target.value)}` : ''}`) }, h('option', { value: '' }, 'all categories, stacked'), cats.map((c) => h('option', { value: c, selected: c === only }, c)));
  const out = [
    h('h2', null, 'Score distributions'),
    h('p', { class: 'muted small' }, `Every recorded score of the enabled scorers over the run’s range in ${scores.bins} bins; the rules’ bounds are dashed, and what they reject is shaded.`, scores.texts?.length ? ` Recorded as text, not drawn: ${scores.texts.join(', ')}.` : ''),
    h('div', { class: 'controls' }, h('label', null, 'Show ', select), legend(shown.map((c) => ({ name: c, color: colors[c] })))),
  ];
  if (!scores.scores?.length) out.push(h('p', { class: 'muted' }, 'This run recorded no scores (no scorers enabled).'));
  const withRules = scores.scores.filter((sc) => sc.rules?.length);
  const group = (title, list, testid) =>
    list.length
      ? h(
          'details',
          { open: true, class: 'scorer' },
          h('summary', null, h('h3', null, title, h('span', { class: 'muted' }, ` ${list.length} score${list.length === 1 ? '' : 's'}`))),
          h('div', { class: 'chart-grid', testid }, list.map((sc) => scoreCard(sc, shown, colors))),
        )
      : null;
  out.push(group('Scores the rules read', withRules, 'scores-ruled'));
  for (const scorer of scores.scorers ?? []) out.push(group(scorer, scores.scores.filter((sc) => sc.scorer === scorer), `scores-${scorer}`));
  return out;
}

function scoreCard(sc, shown, colors) {
  const nulls = shown.reduce((n, c) => n + (sc.nulls?.[c] ?? 0), 0);
  const bounds = (sc.rules ?? []).map((b) => ({ ...b, label: `${b.rule}${b.categories.length < Object.keys(sc.counts).length ? ` (${b.categories.join(', ')})` : ''}` }));
  return h(
    'div',
    { class: 'chart-card', testid: `score-${sc.column}` },
    h('div', { class: 'chart-title' }, h('code', null, sc.name), nulls ? h('span', { class: 'muted' }, ` ${fmtInt(nulls)} unmeasured`) : null),
    histogram({ edges: sc.edges, series: shown.map((c) => ({ name: c, color: colors[c], counts: sc.counts?.[c] ?? [] })), bounds, label: `${sc.name} by category` }),
  );
}
