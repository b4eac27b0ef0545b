// flux-agent web page: Solve (live trajectory), Runs (history) and Templates (library search).
//
// Native ES modules, no framework and no build step. Everything the server or a model sends is
// untrusted text: it goes into the page through textContent / text nodes only, never innerHTML.
// KaTeX (vendored by app/build.sh) then typesets math in those text nodes when it is loaded.
//
// This module owns the tabs, routing (#/solve, #/runs, #/runs/<id>, #/templates) and the
// server status, and starts everything.

import { $ } from './dom.js';
import { setupSettings } from './settings.js';
import { setupSolve } from './solve.js';
import { setupRuns, openRun, selectedRun, selectRun, markRunsStale, showRuns } from './runs.js';
import { setupTemplates } from './templates.js';

const VIEWS = ['solve', 'runs', 'templates'];

// The Solve and Runs views both draw trajectories with the same classes (.step-card …).
// While a view is hidden its trajectory is parked outside the document, so a selector such
// as `.step-card[data-step="0"]` only ever matches the visible one. A TrajectoryView keeps
// references to its own nodes, so a stream can go on updating a parked trajectory.
const TRAJECTORY_ROOTS = { solve: '#trajectory', runs: '#run-detail' };
const parked = new Map(); // root element -> DocumentFragment holding its children

function park(root) {
  if (parked.has(root) && !root.hasChildNodes()) return;
  const fragment = document.createDocumentFragment();
  fragment.append(...root.childNodes);
  parked.set(root, fragment);
}

function unpark(root) {
  const fragment = parked.get(root);
  if (!fragment) return;
  parked.delete(root);
  // Something new was drawn in the meantime (a resume from the Runs view): keep that.
  if (!root.hasChildNodes()) root.append(fragment);
}

function showView(name) {
  if (!VIEWS.includes(name)) name = 'solve';
  for (const view of VIEWS) {
    const root = TRAJECTORY_ROOTS[view] && $(TRAJECTORY_ROOTS[view]);
    if (root) (view === name ? unpark : park)(root);
    $(`#view-${view}`).hidden = view !== name;
    const tab = $(`#tab-${view}`);
    tab.setAttribute('aria-selected', String(view === name));
    tab.tabIndex = view === name ? 0 : -1;
  }
  const hash = name === 'runs' && selectedRun() ? `#/runs/${encodeURIComponent(selectedRun())}` : `#/${name}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
  if (name === 'runs') showRuns();
  if (name === 'templates') $('#template-query').focus({ preventScroll: true });
}

function route() {
  const [, view, id] = location.hash.match(/^#\/([a-z]+)(?:\/(.+))?/) || [];
  if (view === 'runs' && id) {
    selectRun(decodeURIComponent(id));
    showView('runs');
    openRun(selectedRun());
  } else {
    showView(view || 'solve');
  }
}

function setupTabs() {
  const tabs = VIEWS.map((view) => $(`#tab-${view}`));
  for (const tab of tabs) tab.addEventListener('click', () => showView(tab.dataset.view));
  // Arrow keys move between tabs (the WAI-ARIA tabs pattern).
  $('.tabs').addEventListener('keydown', (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const current = tabs.indexOf(document.activeElement);
    const next = tabs[(current + step + tabs.length) % tabs.length];
    next.focus();
    showView(next.dataset.view);
  });
  window.addEventListener('hashchange', route);
}

async function checkHealth() {
  const badge = $('#health');
  const text = $('.health-text', badge);
  try {
    const response = await fetch('/readyz', { headers: { Accept: 'application/json' } });
    const body = await response.json().catch(() => ({}));
    const ready = response.ok && body.status === 'ready';
    badge.dataset.state = ready ? 'ready' : 'unavailable';
    text.textContent = ready ? 'ready' : 'unavailable';
    badge.title = Object.entries(body.checks || {}).map(([name, value]) => `${name}: ${value}`).join('\n') || `HTTP ${response.status}`;
  } catch {
    badge.dataset.state = 'unavailable';
    text.textContent = 'offline';
    badge.title = 'The server did not answer /readyz.';
  }
}

function init() {
  setupSettings();
  setupTabs();
  setupSolve({ showSolve: () => showView('solve'), runEnded: markRunsStale });
  setupRuns();
  setupTemplates();
  route();
  checkHealth();
}

init();
