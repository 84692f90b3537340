// The Progress page: /api/status polled every 2 s from the moment the app opens, a history of the shard
// counts kept here (the server keeps none), and the page redrawn on every poll while it is shown.
import { api, errorBox, figures, fmtInt, fmtNum, fmtPct, fmtSeconds, h, table } from './dom.js';
import { clock, legend, stackedArea, stackedBars, timeline } from './charts.js';

export const POLL_MS = 2000;
const HISTORY_POINTS = 3600;
const COLORS = { committed: '#54a24b', failed: '#e45756', pending: '#c7c7c7', accepted: '#54a24b', rejected: '#e45756' };

/** The shared status: the last answer, the history of counts, the last error, and who wants to hear of a new poll. */
export const status = { last: null, error: null, history: [], listeners: new Set(), polling: false };

export function startPolling() {
  if (status.polling) return;
  status.polling = true;
  void poll();
}

async function poll() {
  try {
    const st = await api('/api/status');
    status.last = st;
    status.error = null;
    status.history.push({ t: Date.now(), values: { committed: st.shards.committed, failed: st.shards.failed, pending: st.shards.pending }, done: st.candidates.done });
    if (status.history.length > HISTORY_POINTS) status.history.splice(0, status.history.length - HISTORY_POINTS);
  } catch (e) {
    status.error = e;
  }
  for (const listener of status.listeners) listener();
  // A finalized run changes no more; anything else (running, finished, unreachable) is asked again.
  if (status.last?.state === 'finalized' && !status.error) status.polling = false;
  else setTimeout(poll, POLL_MS);
}

export function renderProgress({ view }) {
  const draw = () => view.replaceChildren(progressPage());
  status.listeners.add(draw);
  if (status.last || status.error) draw();
  else view.replaceChildren(h('p', { class: 'muted' }, 'Reading the run status…'));
  startPolling();
  return () => status.listeners.delete(draw);
}

function progressPage() {
  const st = status.last;
  const page = h('section', { testid: 'page-progress' }, h('h1', null, 'Progress'));
  if (status.error) {
    page.append(errorBox(status.error, 'the run status'));
    if (st) page.append(h('p', { class: 'muted' }, `Showing the status read at ${clock(Date.parse(st.checked_at) || Date.now())}; asking again every ${POLL_MS / 1000} s.`));
  }
  if (!st) return page;
  const sh = st.shards;
  const c = st.candidates;
  page.append(stateBanner(st));
  page.append(
    figures([
      [`of ${fmtInt(sh.total)} shards committed`, fmtInt(sh.committed), 'shards-committed'],
      ['shards failed', fmtInt(sh.failed), 'shards-failed', 'pending shards whose last attempt failed'],
      ['shards pending', fmtInt(sh.pending), 'shards-pending', 'not committed and not failed'],
      [`of ${fmtInt(c.planned)} candidate pairs done`, fmtInt(c.done), 'candidates-done'],
      [`accepted (${fmtPct(c.done ? c.accepted / c.done : null)})`, fmtInt(c.accepted), 'candidates-accepted'],
      ['rejected', fmtInt(c.rejected), 'candidates-rejected'],
      ['pairs / s', st.pairs_per_s === null ? '—' : fmtNum(st.pairs_per_s), 'pairs-per-s', 'candidate pairs per wall-clock second over the last two minutes the server watched; — until it saw the run move'],
      ['ETA', st.state === 'running' ? fmtSeconds(st.eta_s) : 'done', 'eta', 'wall-clock time left at that rate'],
    ]),
  );
  page.append(progressBar(sh));
  if (sh.invalid) page.append(h('p', { class: 'warning' }, `${fmtInt(sh.invalid)} shard${sh.invalid === 1 ? ' has a marker' : 's have markers'} that do not match their files; \`pairgen work\` remakes them.`));

  page.append(h('h2', null, 'Shards since this page opened'));
  page.append(legend(['committed', 'failed', 'pending'].map((name) => ({ name, color: COLORS[name] }))));
  page.append(stackedArea(status.history, ['committed', 'failed', 'pending'].map((name) => ({ name, color: COLORS[name] })), { yMax: sh.total, width: 1180, height: 200, testid: 'shards-chart', label: 'committed, failed and pending shards over time' }));
  page.append(h('p', { class: 'muted small', testid: 'last-update' }, `${status.history.length} reading${status.history.length === 1 ? '' : 's'}; last at ${clock(Date.parse(st.checked_at) || Date.now())}${st.state === 'finalized' ? ' (finalized: no more polling)' : `, every ${POLL_MS / 1000} s`}.`));

  const cats = Object.entries(st.by_category ?? {});
  if (cats.length) {
    page.append(h('h2', null, 'Acceptance so far'));
    page.append(legend([{ name: 'accepted', color: COLORS.accepted }, { name: 'rejected', color: COLORS.rejected }]));
    page.append(stackedBars(cats.map(([cat, n]) => ({ label: cat, note: fmtPct(n.accepted / Math.max(1, n.accepted + n.rejected)), parts: [{ name: 'accepted', value: n.accepted, color: COLORS.accepted }, { name: 'rejected', value: n.rejected, color: COLORS.rejected }] })), { testid: 'live-acceptance', label: 'accepted and rejected pairs by category' }));
    const reasons = Object.entries(st.rejected_by_reason ?? {});
    if (reasons.length) page.append(h('p', null, 'Rejected because: ', reasons.map(([r, n], i) => [i ? ', ' : '', h('code', null, r), ` ${fmtInt(n)}`])));
  }

  page.append(h('h2', null, 'Worker activity'));
  page.append(workerActivity(st.workers ?? []));

  page.append(h('h2', null, 'Failed shards'));
  page.append(
    st.failed.length
      ? table(
          ['shard', 'attempts', 'last attempt', 'error'],
          st.failed.map((f) => ({ cells: [String(f.shard), fmtInt(f.attempts), f.time ? new Date(f.time).toLocaleString('en-GB') : '—', h('pre', { class: 'error-text' }, f.error)] })),
          { numeric: [0, 1], testid: 'failed-shards' },
        )
      : h('p', { class: 'muted', testid: 'failed-shards' }, 'None.'),
  );
  if (st.failed.length) page.append(h('p', { class: 'muted small' }, 'Failed shards stay pending; `pairgen work --retry-failed` tries them again.'));
  return page;
}

function stateBanner(st) {
  const { state, uri } = st;
  if (state === 'finalized') return h('p', { class: 'banner ok', testid: 'run-state', 'data-state': state }, h('strong', null, 'Finalized. '), 'Every shard is committed; manifest.parquet, stats.json and README.md are written.');
  if (state === 'finished') return h('p', { class: 'banner ok', testid: 'run-state', 'data-state': state }, h('strong', null, 'Finished. '), 'Every shard is committed; ', h('code', null, `pairgen finalize ${uri}`), ' writes the manifest and stats.');
  return h('p', { class: 'banner running', testid: 'run-state', 'data-state': state }, h('strong', null, 'Running. '), `Refreshing every ${POLL_MS / 1000} s without reloading the page.`);
}

function progressBar(sh) {
  const part = (n, cls, name) => (n > 0 ? h('div', { class: `bar-part ${cls}`, style: `width: ${(100 * n) / Math.max(1, sh.total)}%`, title: `${name}: ${fmtInt(n)}` }) : null);
  return h('div', { class: 'progress-bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': sh.total, 'aria-valuenow': sh.committed }, part(sh.committed, 'committed', 'committed'), part(sh.failed, 'failed', 'failed'), part(sh.pending, 'pending', 'pending'));
}

function workerActivity(workers) {
  if (workers.length === 0) return h('p', { class: 'muted', testid: 'workers' }, 'No shard committed yet.');
  const timed = workers
    .filter((w) => w.committed_at && Number.isFinite(Date.parse(w.committed_at)))
    .map((w) => {
      const end = Date.parse(w.committed_at);
      return { shard: w.shard, end, start: end - 1000 * (w.seconds ?? 0), label: `shard ${w.shard}: ${fmtSeconds(w.seconds)} of worker time, committed ${clock(end)}` };
    });
  return h(
    'div',
    null,
    timed.length ? [h('p', { class: 'muted small' }, 'Each bar is a committed shard, from its start (its commit less its worker time) to its commit; shards that overlapped share no lane.'), timeline(timed, { width: 1180, testid: 'workers-timeline' })] : null,
    table(
      ['shard', 'committed at', 'worker time', 'peak memory', 'device'],
      workers.slice(0, 20).map((w) => ({ cells: [String(w.shard), w.committed_at ? new Date(w.committed_at).toLocaleString('en-GB') : '—', fmtSeconds(w.seconds), w.peak_rss_mb === null || w.peak_rss_mb === undefined ? '—' : `${fmtInt(w.peak_rss_mb)} MB`, w.device ?? '—'] })),
      { numeric: [0, 2, 3], testid: 'workers' },
    ),
    workers.length > 20 ? h('p', { class: 'muted small' }, `The ${20} most recent of ${fmtInt(workers.length)} listed.`) : null,
  );
}
