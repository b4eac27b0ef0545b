// Solve view: the problem form, and the live run drawn in #trajectory as the server streams it.

import { $, h, append, clear, fill, truncate } from './dom.js';
import { currentBudgets } from './settings.js';
import { ApiError, apiFetch, readServerEvents } from './api.js';
import { TrajectoryView } from './trajectory.js';

const EXAMPLES = [
  'What is the sum of the roots of $x^2 - 5x + 6 = 0$?',
  'Two fair six-sided dice are rolled. What is the probability that the sum is 7?',
  'How many 5-person committees can be chosen from 6 programmers and 8 builders with exactly 2 programmers?',
];

const solveState = {
  view: null, // the TrajectoryView in #trajectory
  controller: null, // AbortController of the running request
};

// Set by setupSolve (main.js owns the tabs and the Runs list): show the Solve tab, and note
// that a run ended (the Runs list is then reloaded when next shown).
const hooks = { showSolve: () => {}, runEnded: () => {} };

function setRunning(running) {
  $('#solve-button').disabled = running;
  $('#stop-button').disabled = !running;
  $('#solve-button').textContent = running ? 'Solving…' : 'Solve';
  document.body.classList.toggle('is-running', running);
  for (const button of document.querySelectorAll('.resume-button')) button.disabled = running;
}

function showIntro() {
  fill($('#trajectory'),
    h('div', { class: 'intro' },
      h('p', {}, 'A navigator model plans a trajectory of thought templates; a solver model works each step, every step is checked by computing its formula exactly, the plan is revised when a step fails, and the final answer is verified.'),
      h('p', { class: 'muted' }, 'Enter a problem above and press Solve to watch it live.')),
  );
}

async function startSolve() {
  if (solveState.controller) return; // already running
  const problem = $('#problem').value.trim();
  if (!problem) {
    $('#problem').focus();
    return;
  }
  const expected = $('#expected').value.trim();
  const body = { problem, stream: true };
  if (expected) body.expected = expected;
  const budgets = currentBudgets();
  if (budgets) body.budgets = budgets;

  const view = new TrajectoryView($('#trajectory'), { live: true, onResume: resumeRun });
  solveState.view = view;
  view.setProblem(problem, expected);
  view.setProgress('Starting…');
  await streamInto(view, '/v1/solve', body);
}

/**
 * POST a solve or resume with stream=true and feed the events to `view`.
 * A JSON reply (a server that does not stream) is rendered as a whole SolveResult.
 */
async function streamInto(view, path, body) {
  const controller = new AbortController();
  solveState.controller = controller;
  setRunning(true);
  let ended = false;
  try {
    const response = await apiFetch(path, { method: 'POST', body, signal: controller.signal, accept: 'text/event-stream' });
    if (!(response.headers.get('content-type') || '').includes('text/event-stream')) {
      view.renderResult(await response.json());
      ended = true;
    } else {
      for await (const event of readServerEvents(response)) {
        view.handle(event);
        if (event.type === 'result' || event.type === 'error') ended = true;
      }
    }
    if (!ended) {
      view.setStatus('error');
      view.showError({ type: 'disconnected', message: 'The connection closed before the run finished.', resumable: true });
    }
  } catch (err) {
    if (err.name === 'AbortError') {
      view.setStatus('stopped');
      view.showNotice('Stopped. The server may still have saved the run so far.', { resumable: !!view.runId });
    } else if (err instanceof ApiError) {
      if (view.runId || err.runId) view.setRun(err.runId || view.runId, { status: 'error' });
      view.showError({ type: err.type, message: err.message, runId: err.runId, fields: err.fields });
    } else {
      console.error(err);
      view.showError({ type: 'client_error', message: `The page could not read the reply: ${err.message}`, resumable: true });
    }
  } finally {
    solveState.controller = null;
    setRunning(false);
    hooks.runEnded();
  }
}

/**
 * Resume an interrupted or timed-out run in the Solve view. From the live view the cards
 * already on screen are kept; from the Runs view the stored result is drawn first.
 */
export async function resumeRun(runId, fromView, stored = null) {
  if (solveState.controller) return;
  let view = fromView;
  if (!view || !view.live) {
    view = new TrajectoryView($('#trajectory'), { live: true, onResume: resumeRun });
    solveState.view = view;
    if (stored) view.renderResult(stored);
    else view.setRun(runId);
    hooks.showSolve();
  }
  view.finished = false;
  view.clearNotice();
  clear(view.footerEl).hidden = true;
  view.setRun(runId, { status: 'running', resumed: true });
  view.setProgress('Resuming…');
  await streamInto(view, `/v1/runs/${encodeURIComponent(runId)}/resume`, { stream: true });
}

export function setupSolve({ showSolve, runEnded }) {
  Object.assign(hooks, { showSolve, runEnded });
  const form = $('#solve-form');
  const problem = $('#problem');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    startSolve();
  });
  problem.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      startSolve();
    }
  });
  $('#stop-button').addEventListener('click', () => solveState.controller?.abort());
  append($('#examples'), EXAMPLES.map((text) =>
    h('button', {
      type: 'button',
      class: 'chip example',
      title: 'Use this example',
      onClick: () => {
        problem.value = text;
        problem.focus();
      },
    }, truncate(text.replace(/\$/g, ''), 60))));
  showIntro();
}
