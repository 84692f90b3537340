// `pairgen serve`'s web app: hash routes to the four pages, a header with the run, and the status poll
// that starts when the app opens (so the progress page has a history from then on).
import { errorBox, h } from './dom.js';
import { renderPair, renderPairs } from './pairs.js';
import { renderProgress, startPolling, status } from './progress.js';
import { renderScores } from './scores.js';
import { renderWhatIf } from './whatif.js';

const ROUTES = [
  { path: /^\/(progress)?$/, nav: 'progress', title: 'Progress', render: renderProgress },
  { path: /^\/scores$/, nav: 'scores', title: 'Acceptance and scores', render: renderScores },
  { path: /^\/pairs$/, nav: 'pairs', title: 'Pairs', render: renderPairs },
  { path: /^\/pair\/([^/]+)$/, nav: 'pairs', title: 'Pair', render: renderPair },
  { path: /^\/whatif$/, nav: 'whatif', title: 'What if', render: renderWhatIf },
];

const view = document.getElementById('view');
let current = { controller: null, cleanup: null };

async function route() {
  const [path, search = ''] = location.hash.replace(/^#/, '').split('?');
  current.controller?.abort();
  current.cleanup?.();
  const controller = new AbortController();
  current = { controller, cleanup: null };
  const found = ROUTES.map((r) => ({ r, match: r.path.exec(path || '/') })).find((x) => x.match);
  for (const a of document.querySelectorAll('nav.main a')) a.classList.toggle('active', a.dataset.nav === found?.r.nav);
  if (!found) {
    view.replaceChildren(h('section', { testid: 'page-missing' }, h('h1', null, 'No such page'), h('p', null, `There is no page “${path}”. `, h('a', { href: '#/progress' }, 'Go to Progress'), '.')));
    return;
  }
  setTitle(found.r.title);
  window.scrollTo(0, 0);
  try {
    const cleanup = await found.r.render({ view, params: new URLSearchParams(search), match: found.match, signal: controller.signal });
    if (typeof cleanup === 'function') {
      if (controller.signal.aborted) cleanup();
      else current.cleanup = cleanup;
    }
  } catch (e) {
    if (controller.signal.aborted) return;
    view.replaceChildren(errorBox(e));
  }
}

function setTitle(page) {
  document.title = `${page} · ${status.last?.name ?? 'run'} · pairgen`;
}

/** The header's run line, kept current by the status poll. */
function header() {
  const el = document.getElementById('run');
  const st = status.last;
  if (!st) {
    if (status.error) el.replaceChildren(h('span', { class: 'badge bad' }, 'server not answering'));
    return;
  }
  el.replaceChildren(
    h('strong', { testid: 'run-name' }, st.name),
    h('span', { class: 'muted' }, ` ${st.run_id} · `),
    h('span', { class: 'muted uri', title: st.uri }, st.uri),
    ' ',
    h('span', { class: `badge ${st.state}`, testid: 'header-state' }, st.state),
  );
  if (!document.title.includes(st.name)) setTitle(document.title.split(' · ')[0]);
}

status.listeners.add(header);
startPolling();
window.addEventListener('hashchange', route);
void route();
