// Runs view: the stored runs, newest first, and the selected one drawn in #run-detail.

import { $, h, append, clear, fill, plural, relativeTime, truncate } from './dom.js';
import { renderMath, asMath } from './math.js';
import { apiJson } from './api.js';
import { TrajectoryView } from './trajectory.js';
import { resumeRun } from './solve.js';

const RUNS_PAGE = 20;
const runsState = { offset: 0, loaded: false, stale: false, loading: false, selected: null };

async function loadRuns({ more = false } = {}) {
  if (runsState.loading) return;
  runsState.loading = true;
  const list = $('#runs-list');
  const moreButton = $('#runs-more');
  if (!more) runsState.offset = 0;
  moreButton.disabled = true;
  try {
    const page = await apiJson(`/v1/runs?limit=${RUNS_PAGE}&offset=${runsState.offset}`);
    const runs = page.runs || [];
    if (!more) clear(list);
    append(list, runs.map(runRow));
    runsState.offset += runs.length;
    runsState.loaded = true;
    runsState.stale = false;
    moreButton.hidden = runs.length < (page.limit || RUNS_PAGE);
    $('#runs-empty').hidden = list.children.length > 0;
    markSelectedRun();
  } catch (err) {
    if (!more) clear(list);
    list.append(h('div', { class: 'error-box compact', role: 'alert' }, h('p', { class: 'error-message' }, err.message)));
  } finally {
    moreButton.disabled = false;
    runsState.loading = false;
  }
}

function runRow(run) {
  const hasAnswer = run.answer !== null && run.answer !== undefined && run.answer !== '';
  const row = h('button', { type: 'button', class: 'run-row', dataset: { runId: run.run_id } },
    h('span', { class: 'run-row-top' },
      h('span', { class: `status-pill status-${run.status}` }, run.status),
      h('code', { class: 'run-row-id' }, run.run_id),
      h('span', { class: 'spacer' }),
      h('time', { class: 'run-row-time', datetime: run.updated_at || '', title: run.updated_at ? new Date(run.updated_at).toLocaleString() : '' },
        relativeTime(run.updated_at))),
    h('span', { class: 'run-row-problem' }, truncate(run.problem, 160)),
    h('span', { class: 'run-row-bottom' },
      h('span', { class: 'label' }, 'Answer'),
      hasAnswer ? h('span', { class: 'run-row-answer' }, asMath(run.answer)) : h('span', { class: 'muted' }, '—'),
      run.verified
        ? h('span', { class: 'verified-mark tone-ok', title: 'verified' }, '✓')
        : h('span', { class: 'verified-mark tone-neutral', title: 'not verified' }, '·'),
      h('span', { class: 'spacer' }),
      typeof run.steps === 'number' ? h('span', { class: 'muted' }, plural(run.steps, 'step')) : null),
  );
  row.addEventListener('click', () => openRun(run.run_id));
  renderMath(row.querySelector('.run-row-problem'));
  renderMath(row.querySelector('.run-row-answer'));
  return row;
}

function markSelectedRun() {
  for (const row of document.querySelectorAll('.run-row')) {
    const selected = row.dataset.runId === runsState.selected;
    row.classList.toggle('selected', selected);
    if (selected) row.setAttribute('aria-current', 'true');
    else row.removeAttribute('aria-current');
  }
}

export async function openRun(runId) {
  runsState.selected = runId;
  markSelectedRun();
  history.replaceState(null, '', `#/runs/${encodeURIComponent(runId)}`);
  const detail = $('#run-detail');
  fill(detail, h('p', { class: 'muted empty' }, 'Loading…'));
  try {
    const result = await apiJson(`/v1/runs/${encodeURIComponent(runId)}`);
    if (runsState.selected !== runId) return; // another row was clicked meanwhile
    const view = new TrajectoryView(clear(detail), {
      onResume: (id) => resumeRun(id, null, result),
    });
    view.renderResult(result);
  } catch (err) {
    if (runsState.selected !== runId) return;
    fill(detail, h('div', { class: 'error-box', role: 'alert' }, h('p', { class: 'error-message' }, err.message)));
  }
  // On a narrow screen the detail sits below the list: bring it into view.
  if (window.matchMedia('(max-width: 899px)').matches) detail.scrollIntoView({ behavior: 'smooth', block: 'start' });
}

/** The selected run's id, or null. */
export function selectedRun() {
  return runsState.selected;
}

export function selectRun(runId) {
  runsState.selected = runId;
}

/** A live run ended (answered, failed or stopped): reload the list when it is shown next. */
export function markRunsStale() {
  runsState.stale = true;
}

/** The Runs tab was opened: load the list the first time and after a run. */
export function showRuns() {
  if (!runsState.loaded || runsState.stale) loadRuns();
}

export function setupRuns() {
  $('#runs-refresh').addEventListener('click', () => loadRuns());
  $('#runs-more').addEventListener('click', () => loadRuns({ more: true }));
}
