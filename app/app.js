// flux-agent web page: Solve (live trajectory), Runs (history) and Templates (library search).
//
// Plain ES module, no framework and no build step. Everything the server or a model sends is
// untrusted text: it goes into the page through textContent / text nodes only, never innerHTML.
// KaTeX (vendored by app/build.sh) then typesets math in those text nodes when it is loaded.

// ---------------------------------------------------------------------------------------------
// DOM helpers
// ---------------------------------------------------------------------------------------------

const $ = (selector, root = document) => root.querySelector(selector);

/**
 * Build an element. `props` keys: `class`, `dataset`, `text`, `on<Event>` handlers, DOM
 * properties (hidden, disabled, type, value, open, title, id) and other attributes.
 * Children may be nodes, strings (become text nodes), arrays, or null/false (skipped).
 */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

function clear(el) {
  el.replaceChildren();
  return el;
}

/** Replace `el`'s children (same child rules as h()). */
function fill(el, ...children) {
  return append(clear(el), children);
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function formatNumber(n) {
  return Number(n || 0).toLocaleString('en-US');
}

function formatSeconds(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '–';
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

function truncate(text, max) {
  const clean = String(text || '').replace(/\s+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** "3 min ago" for recent times, a short date otherwise. */
function relativeTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 45) return 'just now';
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return date.toLocaleDateString(undefined, { month: 'short', day: 'numeric', year: 'numeric' });
}

function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// ---------------------------------------------------------------------------------------------
// Math (KaTeX, optional)
// ---------------------------------------------------------------------------------------------

const MATH_DELIMITERS = [
  { left: '$$', right: '$$', display: true },
  { left: '\\[', right: '\\]', display: true },
  { left: '\\(', right: '\\)', display: false },
  { left: '$', right: '$', display: false },
];

function katexAvailable() {
  return typeof window.katex === 'object' && typeof window.renderMathInElement === 'function';
}

/** Typeset the math inside `el`'s text nodes. Without KaTeX the raw text simply stays. */
function renderMath(el) {
  if (!el || !katexAvailable()) return;
  try {
    // The default ignoredTags skip <code>/<pre>, which is where sympy expressions live.
    window.renderMathInElement(el, { delimiters: MATH_DELIMITERS, throwOnError: false });
  } catch (err) {
    console.warn('math rendering failed', err);
  }
}

/** True when the text reads like a sentence rather than a formula (3+ letter words). */
function looksLikeProse(text) {
  const stripped = text.replace(/\\text\{[^}]*\}/g, '').replace(/\\[A-Za-z]+/g, '');
  return /\b[A-Za-z]{3,}\b/.test(stripped);
}

/**
 * Wrap a bare LaTeX answer such as `\frac{1}{2}` or `\boxed{5}` in `\( … \)` so the
 * auto-renderer typesets it. Text that already has delimiters, has no backslash command,
 * or reads like prose is left alone; so is everything when KaTeX is not loaded.
 */
function asMath(text) {
  const s = String(text ?? '');
  if (!katexAvailable() || !s.trim()) return s;
  if (/\$|\\\(|\\\[/.test(s)) return s;
  if (!/\\[A-Za-z]+|[\^_]\{/.test(s) || looksLikeProse(s)) return s;
  return `\\(${s}\\)`;
}

/**
 * In pre-wrapped text a display formula is a block already, so the line breaks written
 * around its $$ … $$ would show as blank lines: drop one on each side.
 */
function trimAroundDisplayMath(el) {
  for (const display of el.querySelectorAll('.katex-display')) {
    // auto-render puts each formula in a wrapper <span>; the text nodes are its siblings.
    const block = display.parentElement !== el ? display.parentElement : display;
    const before = block.previousSibling;
    const after = block.nextSibling;
    if (before?.nodeType === Node.TEXT_NODE) before.textContent = before.textContent.replace(/\n[ \t]*$/, '');
    if (after?.nodeType === Node.TEXT_NODE) after.textContent = after.textContent.replace(/^[ \t]*\n/, '');
  }
}

/** A computed value is always LaTeX (sympy's output): wrap it whenever KaTeX is there. */
function valueAsMath(text) {
  const s = String(text ?? '');
  if (!katexAvailable() || !s.trim() || /\$|\\\(|\\\[/.test(s)) return s;
  return `\\(${s}\\)`;
}

/**
 * Checker messages quote LaTeX values without delimiters ("stated \frac{1}{3} but …"):
 * wrap each space-free token that holds a backslash command so it gets typeset.
 */
function inlineLatex(text) {
  const s = String(text ?? '');
  if (!katexAvailable() || /\$|\\\(|\\\[/.test(s)) return s;
  return s.replace(/\S*\\[A-Za-z]+\S*/g, (token) => {
    const [, body, tail] = token.match(/^(.*?)([.,;:)]*)$/);
    return `\\(${body}\\)${tail}`;
  });
}

/** A <span> holding `text` (wrapped as math when it is a bare formula), typeset. */
function mathSpan(text, className = '', wrap = asMath) {
  const span = h('span', { class: className }, wrap(text));
  renderMath(span);
  return span;
}

// ---------------------------------------------------------------------------------------------
// Settings (API key and budgets, kept in localStorage)
// ---------------------------------------------------------------------------------------------

const SETTINGS_KEY = 'flux-agent.settings';
const BUDGET_FIELDS = [
  ['max_steps', 'budget-max-steps'],
  ['max_revisions', 'budget-max-revisions'],
  ['max_total_tokens', 'budget-max-tokens'],
];

function loadSettings() {
  try {
    return JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}') || {};
  } catch {
    return {};
  }
}

function saveSettings(settings) {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    /* storage disabled (private mode): settings last for this page only */
  }
}

let settings = loadSettings();

/** The budgets to send, or null when none is set. */
function currentBudgets() {
  const budgets = {};
  for (const [key] of BUDGET_FIELDS) {
    const n = Number.parseInt(settings[key], 10);
    if (Number.isFinite(n) && n >= 0) budgets[key] = n;
  }
  return Object.keys(budgets).length ? budgets : null;
}

function setupSettings() {
  const form = $('#settings-form');
  const details = $('#settings');
  const keyInput = $('#api-key');
  keyInput.value = settings.api_key || '';
  for (const [key, id] of BUDGET_FIELDS) $(`#${id}`).value = settings[key] ?? '';

  const store = () => {
    settings = { api_key: keyInput.value.trim() };
    for (const [key, id] of BUDGET_FIELDS) {
      const value = $(`#${id}`).value.trim();
      if (value !== '') settings[key] = value;
    }
    saveSettings(settings);
  };
  form.addEventListener('input', store);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    store();
    details.open = false;
  });
  $('#settings-clear').addEventListener('click', () => {
    form.reset();
    store();
  });
  // Close the panel on a click elsewhere or on Escape.
  document.addEventListener('click', (event) => {
    if (details.open && !details.contains(event.target)) details.open = false;
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && details.open) details.open = false;
  });
}

// ---------------------------------------------------------------------------------------------
// API client
// ---------------------------------------------------------------------------------------------

/** An HTTP error with the API's error body: {error: {type, message, fields?, run_id?}}. */
class ApiError extends Error {
  constructor(status, error = {}) {
    super(error.message || `Request failed (HTTP ${status}).`);
    this.status = status;
    this.type = error.type || 'http_error';
    this.fields = Array.isArray(error.fields) ? error.fields : [];
    this.runId = error.run_id || null;
  }
}

async function errorFromResponse(response) {
  let error = {};
  try {
    const body = await response.json();
    if (body && typeof body.error === 'object') error = body.error;
    else if (body && typeof body.detail === 'string') error = { message: body.detail };
  } catch {
    /* not JSON: keep the generic message */
  }
  if (!error.message) {
    error.message = `The server answered HTTP ${response.status} ${response.statusText || ''}`.trim() + '.';
  }
  return new ApiError(response.status, error);
}

/** fetch() for /v1 routes: adds the API key, sends JSON, throws ApiError on HTTP >= 400. */
async function apiFetch(path, { method = 'GET', body, signal, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  if (settings.api_key) headers.Authorization = `Bearer ${settings.api_key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { type: 'network_error', message: 'Could not reach the server. Is `flux serve` running?' });
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

async function apiJson(path, options) {
  const response = await apiFetch(path, options);
  return response.json();
}

/**
 * Read a text/event-stream body and yield each event's parsed JSON data.
 * Events are blocks of `id:`, `event:` and `data:` lines ended by a blank line; a network
 * chunk can end anywhere, so text is buffered until a whole block has arrived.
 */
async function* readServerEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      // Normalise CRLF; a lone '\r' at a chunk's end is joined with its '\n' next time.
      buffer = (buffer + value).replace(/\r\n/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = parseEventBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) yield event;
      }
    }
    const last = parseEventBlock(buffer.replace(/\r$/, ''));
    if (last) yield last;
  } finally {
    reader.releaseLock();
  }
}

function parseEventBlock(block) {
  let name = '';
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue; // blank or comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  try {
    const payload = JSON.parse(data.join('\n'));
    if (payload && typeof payload === 'object') {
      if (!payload.type) payload.type = name || 'message';
      return payload;
    }
  } catch (err) {
    console.warn('unreadable server event', err, block);
  }
  return null;
}

// Template details (names for the Runs view), fetched once per id.
const templateCache = new Map();

function fetchTemplate(id) {
  if (!templateCache.has(id)) {
    const request = apiJson(`/v1/templates/${encodeURIComponent(id)}`).catch(() => null);
    templateCache.set(id, request);
  }
  return templateCache.get(id);
}

// ---------------------------------------------------------------------------------------------
// Trajectory view: renders one run, live (event by event) or from a stored SolveResult
// ---------------------------------------------------------------------------------------------

const CHECK_LOOK = {
  verified: { mark: '✓', tone: 'ok' },
  unchecked: { mark: '·', tone: 'neutral' },
  mismatch: { mark: '✗', tone: 'bad' },
  error: { mark: '✗', tone: 'bad' },
  failed: { mark: '✗', tone: 'bad' },
};

const NODE_PROGRESS = {
  plan: () => 'Planning a trajectory of templates…',
  retrieve: () => 'Loading the planned templates…',
  instantiate: (step) => (step === null ? 'Working on the next step…' : `Working on step ${step + 1}…`),
  check: (step) => (step === null ? 'Checking the step…' : `Checking step ${step + 1}…`),
  revise: () => 'Revising the plan…',
  answer: () => 'Writing and verifying the final answer…',
};

const ERROR_TITLES = {
  timeout: 'The run timed out',
  failed: 'The run failed',
  authentication_error: 'Not authorised',
  network_error: 'Server unreachable',
  disconnected: 'Connection lost',
  rate_limit: 'Too many requests',
  invalid_request_error: 'Invalid request',
  request_too_large: 'Request too large',
  not_found: 'Not found',
  conflict: 'Conflict',
  unavailable: 'Service unavailable',
  server_error: 'Server error',
};

/** One planned step: template, goal, streamed work, result, check. */
class StepCard {
  constructor(index, step) {
    this.index = index;
    this.raw = ''; // the step's text as streamed (kept raw so math can be re-rendered)
    this.templateId = null;
    this.goalText = undefined;
    this.checkDetail = '';

    this.numberEl = h('span', { class: 'step-num' }, `Step ${index + 1}`);
    this.attemptEl = h('span', { class: 'step-attempt', hidden: true });
    this.badgeSlot = h('span', { class: 'badge-slot' });
    this.nameEl = h('span', { class: 'template-name' });
    this.idEl = h('code', { class: 'template-id' });
    this.descEl = h('p', {
      class: 'template-desc',
      hidden: true,
      title: 'Click to show all',
      onClick: () => this.descEl.classList.toggle('expanded'),
    });
    this.goalEl = h('span', { class: 'goal-text' });
    this.textEl = h('div', { class: 'step-text', hidden: true });
    this.resultEl = h('div', { class: 'step-result', hidden: true });
    this.detailEl = h('p', { class: 'check-detail', hidden: true });

    this.el = h(
      'li',
      { class: 'step-card', dataset: { step: String(index), state: 'pending' } },
      h('div', { class: 'step-head' }, this.numberEl, this.attemptEl, h('span', { class: 'spacer' }), this.badgeSlot),
      h('div', { class: 'step-template' }, h('div', { class: 'template-title' }, this.nameEl, this.idEl), this.descEl),
      h('p', { class: 'step-goal' }, h('span', { class: 'label' }, 'Goal'), this.goalEl),
      this.textEl,
      this.resultEl,
      this.detailEl,
    );
    this.setPlan(step);
  }

  /** The planned template and goal (from the plan, a revision or step_started). */
  setPlan(step = {}) {
    if (step.template_id && step.template_id !== this.templateId) {
      this.templateId = step.template_id;
      this.idEl.textContent = step.template_id;
      this.nameEl.textContent = '';
      this.descEl.hidden = true;
    }
    if (step.goal !== undefined && step.goal !== this.goalText) {
      this.goalText = step.goal;
      this.goalEl.textContent = step.goal || '';
      renderMath(this.goalEl);
    }
  }

  /** Name and description of the template (from `template` events or GET /v1/templates/{id}). */
  setTemplate({ id, name, description }) {
    if (id && id !== this.templateId) this.setPlan({ template_id: id });
    this.nameEl.textContent = name || '';
    if (description) {
      this.descEl.textContent = description;
      this.descEl.hidden = false;
      renderMath(this.descEl);
    }
  }

  setState(state) {
    this.el.dataset.state = state;
  }

  /** A (re)start of the step: anything from an earlier attempt is cleared. */
  start({ attempt = 1, template_id, goal }) {
    this.setPlan({ template_id, goal });
    this.raw = '';
    this.textEl.textContent = '';
    this.textEl.hidden = true;
    this.textEl.classList.remove('typeset');
    this.resultEl.hidden = true;
    clear(this.resultEl);
    clear(this.badgeSlot);
    this.detailEl.hidden = true;
    this.attemptEl.hidden = attempt <= 1;
    this.attemptEl.textContent = `attempt ${attempt}`;
    this.setState('active');
  }

  appendText(delta) {
    if (!delta) return;
    if (this.textEl.classList.contains('typeset')) {
      // Already typeset (a late delta): go back to raw text, typeset again at the end.
      this.textEl.classList.remove('typeset');
      this.textEl.textContent = this.raw;
    }
    this.raw += delta;
    this.textEl.hidden = false;
    // Follow the text while it streams unless the reader scrolled up inside the box.
    const box = this.textEl;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    box.append(delta);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  /** The step's text is complete: typeset its math. */
  finishText(text) {
    if (text !== undefined) this.raw = text;
    this.textEl.textContent = this.raw;
    this.textEl.hidden = !this.raw.trim();
    this.textEl.classList.add('typeset');
    renderMath(this.textEl);
    trimAroundDisplayMath(this.textEl);
  }

  setResult(result, expression, value) {
    clear(this.resultEl);
    this.resultEl.append(
      h('div', { class: 'result-line' },
        h('span', { class: 'label' }, 'Result'),
        result ? mathSpan(result, 'result-value') : h('span', { class: 'muted' }, '(none)')),
    );
    if (expression) {
      this.expressionRow = h('div', { class: 'expression-line' },
        h('span', { class: 'label' }, 'Check'),
        h('code', { class: 'expression' }, expression));
      this.resultEl.append(this.expressionRow);
    }
    if (value) this.setValue(value);
    this.resultEl.hidden = false;
  }

  /** The exact value the checker computed from the expression. */
  setValue(value) {
    if (!value || !this.expressionRow || this.expressionRow.querySelector('.computed-value')) return;
    this.expressionRow.append(h('span', { class: 'equals' }, '='), mathSpan(value, 'computed-value', valueAsMath));
  }

  setCheck(status, detail, value) {
    const look = CHECK_LOOK[status] || CHECK_LOOK.unchecked;
    fill(this.badgeSlot,
      h('span', {
        class: `check-badge check-${status} tone-${look.tone}`,
        dataset: { status },
        title: detail || status,
      }, h('span', { class: 'mark', 'aria-hidden': 'true' }, look.mark), ` ${status}`),
    );
    this.checkDetail = detail || '';
    this.detailEl.textContent = inlineLatex(detail || '');
    this.detailEl.hidden = !detail;
    this.detailEl.className = `check-detail tone-${look.tone}`;
    renderMath(this.detailEl);
    if (value) this.setValue(value);
    this.setState('done');
  }

  /** Fill the card from a stored StepRecord. */
  setRecord(record) {
    this.setPlan(record);
    this.finishText(record.reasoning || '');
    this.attemptEl.hidden = !(record.attempts > 1);
    this.attemptEl.textContent = `${plural(record.attempts, 'attempt')}`;
    this.setResult(record.result, record.expression, record.value);
    this.setCheck(record.check || 'unchecked', record.check_detail, record.value);
  }

  /** Turn this card into the record of an attempt a revision discarded. */
  retire() {
    this.el.classList.remove('step-card');
    this.el.classList.add('superseded-step');
    this.el.dataset.supersededStep = this.el.dataset.step;
    delete this.el.dataset.step;
    this.el.dataset.state = 'superseded';
    return this.el;
  }
}

class TrajectoryView {
  /**
   * @param {HTMLElement} root  where to render
   * @param {object} options
   *   live: the Solve view's instance; it carries the stable ids (#run-id, #answer, #error)
   *   onResume(runId, view): called by the Resume buttons
   */
  constructor(root, { live = false, onResume = null } = {}) {
    this.root = root;
    this.live = live;
    this.onResume = onResume;
    this.reset();
  }

  reset() {
    this.runId = null;
    this.plan = []; // [{template_id, goal}] as currently planned
    this.cards = new Map(); // step index -> StepCard
    this.activeStep = null;
    this.expected = null;
    this.finished = false;
    this.resumed = false;

    // Fixed slots keep the sections in order whatever arrives first.
    this.headerEl = h('div', { class: 'run-header', hidden: true });
    this.progressEl = h('div', { class: 'run-progress', hidden: true, role: 'status', 'aria-live': 'polite' });
    this.problemEl = h('div', { class: 'problem-echo', hidden: true });
    this.candidatesEl = h('div', { class: 'candidates', hidden: true });
    this.planEl = h('div', { class: 'plan-head', hidden: true });
    this.stepsEl = h('ol', { class: 'steps' });
    this.answerSlot = h('div', { class: 'answer-slot' });
    this.noticeSlot = h('div', { class: 'notice-slot' });
    this.footerEl = h('footer', { class: 'run-footer', hidden: true });
    fill(this.root,
      this.headerEl, this.progressEl, this.problemEl, this.candidatesEl, this.planEl,
      this.stepsEl, this.answerSlot, this.noticeSlot, this.footerEl,
    );
  }

  // --- header, problem, progress ---------------------------------------------------------

  setRun(runId, { status, resumed = false } = {}) {
    if (runId) this.runId = runId;
    fill(this.headerEl,
      h('span', { class: 'label' }, 'Run'),
      h('code', { class: 'run-id', id: this.live ? 'run-id' : null }, this.runId || '…'),
      status ? h('span', { class: `status-pill status-${status}` }, status) : null,
      resumed || this.resumed ? h('span', { class: 'tag' }, 'resumed') : null,
    );
    if (resumed) this.resumed = true;
    this.status = status;
    this.headerEl.hidden = false;
  }

  setStatus(status) {
    this.setRun(this.runId, { status });
  }

  setProblem(problem, expected) {
    this.expected = expected || null;
    fill(this.problemEl,
      h('div', { class: 'problem-text' }, problem),
      expected ? h('div', { class: 'problem-expected' }, h('span', { class: 'label' }, 'Expected'), mathSpan(expected)) : null,
    );
    renderMath(this.problemEl.firstChild);
    this.problemEl.hidden = !problem;
  }

  setProgress(text) {
    clear(this.progressEl);
    if (text) this.progressEl.append(h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
    this.progressEl.hidden = !text;
  }

  // --- plan and steps ----------------------------------------------------------------------

  setCandidates(templates = []) {
    fill(this.candidatesEl,
      h('span', { class: 'label' }, 'Retrieved'),
      templates.map((t) =>
        h('span', { class: 'chip candidate', title: t.id },
          h('span', { class: 'chip-name' }, t.name || t.id),
          typeof t.score === 'number' ? h('span', { class: 'chip-score' }, t.score.toFixed(2)) : null)),
    );
    this.candidatesEl.hidden = !templates.length;
  }

  setPlan(plan, fallback = false) {
    this.plan = (plan?.steps || []).map((s) => ({ template_id: s.template_id, goal: s.goal }));
    fill(this.planEl,
      h('span', { class: 'label' }, 'Plan'),
      h('span', { class: 'plan-count' }, plural(this.plan.length, 'step')),
      fallback ? h('span', { class: 'tag tone-warn' }, 'fallback plan') : null,
      plan?.analysis ? h('p', { class: 'plan-analysis' }, plan.analysis) : null,
    );
    renderMath(this.planEl);
    this.planEl.hidden = false;
    clear(this.stepsEl);
    this.cards.clear();
    this.plan.forEach((step, index) => this.card(index, step));
  }

  /** The card for step `index`, created (at the end of the list) when missing. */
  card(index, step) {
    let card = this.cards.get(index);
    if (!card) {
      card = new StepCard(index, step || this.plan[index] || {});
      this.cards.set(index, card);
      this.stepsEl.append(card.el);
      if (!this.plan[index] && step) this.plan[index] = { template_id: step.template_id, goal: step.goal };
    }
    return card;
  }

  startStep(event) {
    if (this.activeStep !== null && this.activeStep !== event.step) {
      this.cards.get(this.activeStep)?.setState('done');
    }
    this.activeStep = event.step;
    this.card(event.step, event).start(event);
    this.setProgress(NODE_PROGRESS.instantiate(event.step));
  }

  /**
   * The navigator rewrote the plan after step `after_step` failed its check. The agent
   * replaces the plan from the failed step on (that step is redone with the new plan), so the
   * failed attempt is kept, greyed, inside the revision banner and new cards follow.
   * failed=true: no usable revision, the failed step was accepted and the plan kept.
   */
  applyRevision({ after_step: at, failed = false, new_steps: newSteps = [], reason, old_steps: oldSteps }) {
    const anchor = this.cards.get(at);
    if (failed || !newSteps.length) {
      const banner = h('li', { class: 'revision-banner tone-warn', dataset: { afterStep: String(at) } },
        h('div', { class: 'revision-title' }, `↻ Revision after step ${at + 1} failed; the plan was kept.`),
        reason ? h('p', { class: 'revision-reason' }, inlineLatex(reason)) : null);
      if (anchor) anchor.el.after(banner);
      else this.stepsEl.append(banner);
      renderMath(banner);
      return;
    }

    const replaced = oldSteps || this.plan.slice(at);
    const failedCard = anchor && anchor.el.dataset.state !== 'pending' ? anchor : null;
    const why = reason || failedCard?.checkDetail || '';
    const banner = h('li', { class: 'revision-banner', dataset: { afterStep: String(at) } },
      h('div', { class: 'revision-title' }, `↻ Plan revised after step ${at + 1}`),
      why ? h('p', { class: 'revision-reason' }, inlineLatex(why)) : null,
      replaced.length
        ? h('details', { class: 'revision-old' },
            h('summary', {}, `Replaced ${plural(replaced.length, 'planned step')}${failedCard ? ' · the failed attempt' : ''}`),
            h('ol', { class: 'old-steps', start: at + 1 },
              replaced.map((s) => h('li', {}, h('code', {}, s.template_id), ' ', s.goal))),
            failedCard ? h('div', { class: 'superseded-wrap' }, h('p', { class: 'label' }, 'The discarded attempt')) : null)
        : null);
    if (anchor) anchor.el.before(banner);
    else this.stepsEl.append(banner);
    renderMath(banner);
    // Only now (the banner is placed before it) move the failed card into the banner.
    if (failedCard) banner.querySelector('.superseded-wrap')?.append(failedCard.retire());

    // Drop the cards from `at` on and plan the new steps in their place.
    for (const [index, card] of this.cards) {
      if (index >= at) {
        if (card !== failedCard) card.el.remove();
        this.cards.delete(index);
      }
    }
    this.plan = [...this.plan.slice(0, at), ...newSteps];
    newSteps.forEach((step, offset) => this.card(at + offset, step));
    if (this.activeStep !== null && this.activeStep >= at) this.activeStep = null;
  }

  // --- answer, footer, errors ----------------------------------------------------------------

  showAnswer({ answer, verified, verification, correct }, expected = this.expected) {
    const hasAnswer = answer !== null && answer !== undefined && answer !== '';
    const box = h('section', { class: `answer-box ${verified ? 'is-verified' : ''}`, id: this.live ? 'answer' : null },
      h('div', { class: 'answer-top' },
        h('span', { class: 'label' }, 'Final answer'),
        h('span', { class: `tag ${verified ? 'tone-ok' : 'tone-neutral'} verified-tag`, dataset: { verified: String(!!verified) } },
          verified ? '✓ verified' : 'not verified'),
        correct === true || correct === false
          ? h('span', { class: `tag ${correct ? 'tone-ok' : 'tone-bad'} correct-tag`, dataset: { correct: String(correct) } },
              correct ? '✓ correct' : '✗ incorrect')
          : null),
      h('div', { class: 'answer-value', dataset: { answer: hasAnswer ? String(answer) : '' } }, hasAnswer ? asMath(answer) : '(no answer)'),
      verification ? h('p', { class: 'answer-verification' }, inlineLatex(verification)) : null,
      expected && (correct === true || correct === false)
        ? h('p', { class: 'answer-expected' }, 'Expected: ', mathSpan(expected))
        : null,
    );
    fill(this.answerSlot, box);
    renderMath(box.querySelector('.answer-value'));
    renderMath(box.querySelector('.answer-verification'));
  }

  /** Usage, calls, timings and failures of a finished run. */
  showFooter(result) {
    const usage = Object.entries(result.usage || {});
    const timings = Object.entries(result.timings || {}).filter(([name]) => name !== 'total');
    fill(this.footerEl,
      h('div', { class: 'stats' },
        usage.map(([role, u]) =>
          h('span', { class: 'stat' },
            h('span', { class: 'stat-label' }, role),
            `${formatNumber(u.prompt_tokens)} in · ${formatNumber(u.completion_tokens)} out`,
            h('span', { class: 'muted' }, ` (${plural(u.calls || 0, 'call')})`))),
        h('span', { class: 'stat' }, h('span', { class: 'stat-label' }, 'LLM calls'), formatNumber(result.llm_calls)),
        h('span', { class: 'stat' }, h('span', { class: 'stat-label' }, 'Total'), formatSeconds(result.timings?.total))),
      timings.length
        ? h('div', { class: 'timings muted' },
            timings.map(([name, s]) => h('span', {}, `${name} ${formatSeconds(s)}`)))
        : null,
      result.failures?.length
        ? h('div', { class: 'failures' },
            h('span', { class: 'label' }, plural(result.failures.length, 'failure')),
            h('ul', {}, result.failures.map((f) => h('li', {}, f))))
        : null,
    );
    this.footerEl.hidden = false;
  }

  /** A red error box; a timeout (or a dropped stream) gets a Resume button. */
  showError({ type = 'error', message = 'Something went wrong.', runId = null, fields = [], resumable } = {}) {
    const id = runId || this.runId;
    const canResume = (resumable ?? (type === 'timeout')) && id && this.onResume;
    const box = h('div', { class: 'error-box', id: this.live ? 'error' : null, role: 'alert', dataset: { type } },
      h('div', { class: 'error-title' }, ERROR_TITLES[type] || 'Error'),
      h('p', { class: 'error-message' }, message),
      fields.length ? h('ul', { class: 'error-fields' }, fields.map((f) => h('li', {}, h('code', {}, f.field), ` ${f.message}`))) : null,
      type === 'authentication_error' ? h('p', { class: 'muted' }, 'Set the API key in the settings (gear icon, top right).') : null,
      canResume
        ? h('div', { class: 'error-actions' },
            h('p', { class: 'muted' }, `Run ${id} was saved and can be resumed where it stopped.`),
            h('button', { type: 'button', class: 'button resume-button', onClick: () => this.onResume(id, this) }, 'Resume'))
        : null,
    );
    fill(this.noticeSlot, box);
    this.setProgress('');
    this.cards.get(this.activeStep)?.setState('done');
  }

  /** A neutral notice (stopped by the user, interrupted run) with an optional Resume button. */
  showNotice(text, { resumable = false } = {}) {
    const id = this.runId;
    fill(this.noticeSlot,
      h('div', { class: 'notice-box' },
        h('p', {}, text),
        resumable && id && this.onResume
          ? h('button', { type: 'button', class: 'button resume-button', onClick: () => this.onResume(id, this) }, 'Resume')
          : null));
    this.setProgress('');
  }

  clearNotice() {
    clear(this.noticeSlot);
  }

  // --- live events -----------------------------------------------------------------------------

  /** Apply one server event from a streaming solve. Unknown types are ignored. */
  handle(event) {
    switch (event.type) {
      case 'run':
        this.setRun(event.run_id, { status: 'running', resumed: !!event.resumed });
        break;
      case 'node_started':
        // Before its step_started arrives, an instantiate is for a step not known yet.
        this.setProgress((NODE_PROGRESS[event.node] || (() => `${event.node}…`))(
          event.node === 'instantiate' ? null : this.activeStep));
        break;
      case 'candidates':
        this.setCandidates(event.templates);
        break;
      case 'plan':
        this.setPlan(event.plan, event.fallback);
        break;
      case 'template':
        this.card(event.step).setTemplate(event);
        break;
      case 'step_started':
        this.startStep(event);
        break;
      case 'step_text':
        this.card(event.step).appendText(event.delta);
        break;
      case 'step_result': {
        const card = this.card(event.step);
        card.finishText();
        card.setResult(event.result, event.expression);
        break;
      }
      case 'check':
        this.card(event.step).setCheck(event.status, event.detail, event.value);
        break;
      case 'revision':
        this.applyRevision(event);
        break;
      case 'answer':
        this.cards.get(this.activeStep)?.setState('done');
        this.showAnswer(event);
        break;
      case 'result':
        this.finish(event.result || {});
        break;
      case 'error': {
        const error = event.error || {};
        this.finished = true;
        this.setStatus('error');
        this.showError({ type: error.type, message: error.message, runId: error.run_id });
        break;
      }
      default:
        break; // node_finished and anything newer
    }
  }

  /** The final `result` event of a live run. */
  finish(result) {
    this.finished = true;
    this.setProgress('');
    for (const card of this.cards.values()) if (card.el.dataset.state === 'active') card.setState('done');
    if (result.run_id) this.runId = result.run_id;
    this.setStatus(result.status || 'answered');
    if (!this.answerSlot.firstChild && result.status === 'answered') this.showAnswer(result, result.expected);
    this.showFooter(result);
    this.showStatusNotice(result);
  }

  showStatusNotice(result) {
    if (result.status === 'interrupted') {
      this.showNotice('This run was interrupted before it finished.', { resumable: true });
    } else if (result.status === 'failed') {
      this.showError({ type: 'failed', message: 'The run failed without an answer.' + (result.failures?.length ? ' See the failures below.' : '') });
    }
  }

  // --- stored runs -----------------------------------------------------------------------------

  /** Render a whole SolveResult (GET /v1/runs/{id}) with the same cards as the live view. */
  renderResult(result) {
    this.reset();
    this.finished = true;
    this.setRun(result.run_id, { status: result.status });
    this.setProblem(result.problem, result.expected);
    if (result.plan) this.setPlan(result.plan);
    for (const record of result.steps || []) this.card(record.index, record).setRecord(record);
    for (const card of this.cards.values()) if (card.el.dataset.state === 'pending') card.el.classList.add('not-run');
    for (const revision of result.revisions || []) this.placeStoredRevision(revision);
    if (result.status === 'answered' || result.answer) this.showAnswer(result, result.expected);
    this.showFooter(result);
    this.showStatusNotice(result);
    this.loadTemplateNames();
  }

  /**
   * A stored revision only annotates the final plan (its cards are already there): a banner
   * before the step it replaced, or after the step it kept when it failed (old == new).
   */
  placeStoredRevision({ after_step: at, reason, old_steps: oldSteps = [], new_steps: newSteps = [] }) {
    const failed = JSON.stringify(oldSteps) === JSON.stringify(newSteps);
    const anchor = this.cards.get(at);
    const banner = failed
      ? h('li', { class: 'revision-banner tone-warn', dataset: { afterStep: String(at) } },
          h('div', { class: 'revision-title' }, `↻ Revision after step ${at + 1} failed; the plan was kept.`),
          reason ? h('p', { class: 'revision-reason' }, inlineLatex(reason)) : null)
      : h('li', { class: 'revision-banner', dataset: { afterStep: String(at) } },
          h('div', { class: 'revision-title' }, `↻ Plan revised after step ${at + 1}`),
          reason ? h('p', { class: 'revision-reason' }, inlineLatex(reason)) : null,
          oldSteps.length
            ? h('details', { class: 'revision-old' },
                h('summary', {}, `Replaced ${plural(oldSteps.length, 'planned step')}`),
                h('ol', { class: 'old-steps', start: at + 1 },
                  oldSteps.map((s) => h('li', {}, h('code', {}, s.template_id), ' ', s.goal))))
            : null);
    if (!anchor) this.stepsEl.append(banner);
    else if (failed) anchor.el.after(banner);
    else anchor.el.before(banner);
    renderMath(banner);
  }

  /** Stored runs only have template ids: look the names up (best effort). */
  async loadTemplateNames() {
    for (const card of this.cards.values()) {
      if (!card.templateId || card.nameEl.textContent) continue;
      const template = await fetchTemplate(card.templateId);
      if (template && card.templateId === template.id) card.setTemplate(template);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Solve view
// ---------------------------------------------------------------------------------------------

const EXAMPLES = [
  'What is the sum of the roots of $x^2 - 5x + 6 = 0$?',
  'Two fair six-sided dice are rolled. What is the probability that the sum is 7?',
  'How many 5-person committees can be chosen from 6 programmers and 8 builders with exactly 2 programmers?',
];

const solveState = {
  view: null, // the TrajectoryView in #trajectory
  controller: null, // AbortController of the running request
};

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
    runsState.stale = true;
  }
}

/**
 * Resume an interrupted or timed-out run in the Solve view. From the live view the cards
 * already on screen are kept; from the Runs view the stored result is drawn first.
 */
async function resumeRun(runId, fromView, stored = null) {
  if (solveState.controller) return;
  let view = fromView;
  if (!view || !view.live) {
    view = new TrajectoryView($('#trajectory'), { live: true, onResume: resumeRun });
    solveState.view = view;
    if (stored) view.renderResult(stored);
    else view.setRun(runId);
    showView('solve');
  }
  view.finished = false;
  view.clearNotice();
  clear(view.footerEl).hidden = true;
  view.setRun(runId, { status: 'running', resumed: true });
  view.setProgress('Resuming…');
  await streamInto(view, `/v1/runs/${encodeURIComponent(runId)}/resume`, { stream: true });
}

function setupSolve() {
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

// ---------------------------------------------------------------------------------------------
// Runs view
// ---------------------------------------------------------------------------------------------

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

async function openRun(runId) {
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

function setupRuns() {
  $('#runs-refresh').addEventListener('click', () => loadRuns());
  $('#runs-more').addEventListener('click', () => loadRuns({ more: true }));
}

// ---------------------------------------------------------------------------------------------
// Templates view
// ---------------------------------------------------------------------------------------------

let templateSearchSeq = 0;

async function searchTemplates() {
  const query = $('#template-query').value.trim();
  const domain = $('#template-domain').value;
  const status = $('#template-status');
  const results = $('#template-results');
  const seq = ++templateSearchSeq; // replies to older queries are dropped
  if (!query) {
    clear(results);
    status.textContent = 'Type to search.';
    return;
  }
  status.textContent = 'Searching…';
  const params = new URLSearchParams({ q: query, k: '10' });
  if (domain) params.set('domain', domain);
  try {
    const reply = await apiJson(`/v1/templates/search?${params}`);
    if (seq !== templateSearchSeq) return;
    const hits = reply.results || [];
    status.textContent = hits.length ? `${plural(hits.length, 'template')} for “${truncate(query, 60)}”` : 'No templates found.';
    fill(results, ...hits.map(templateCard));
  } catch (err) {
    if (seq !== templateSearchSeq) return;
    clear(results);
    status.textContent = '';
    results.append(h('div', { class: 'error-box', role: 'alert' }, h('p', { class: 'error-message' }, err.message)));
  }
}

function listSection(title, items, ordered = false) {
  if (!items || !items.length) return null;
  return h('div', { class: 'tpl-section' },
    h('h4', {}, title),
    h(ordered ? 'ol' : 'ul', {}, items.map((item) => h('li', {}, item))));
}

function templateDetails(t) {
  const example = t.example || {};
  return h('div', { class: 'tpl-details-body' },
    t.description ? h('p', { class: 'tpl-description' }, t.description) : null,
    listSection('Applies when', t.applies_when),
    listSection('Steps', t.steps, true),
    listSection('Pitfalls', t.pitfalls),
    example.problem
      ? h('div', { class: 'tpl-section tpl-example' },
          h('h4', {}, 'Worked example'),
          h('p', {}, example.problem),
          example.solution ? h('p', { class: 'muted' }, example.solution) : null,
          example.answer ? h('p', {}, h('span', { class: 'label' }, 'Answer'), ' ', asMath(example.answer)) : null)
      : null,
    t.check ? h('p', { class: 'tpl-check' }, h('span', { class: 'label' }, 'Check'), ' ', h('code', {}, t.check)) : null);
}

/** One search hit: name, score, id, domain and tags; the rest in a <details>. */
function templateCard({ score, template: t }) {
  const card = h('article', { class: 'card template-card', dataset: { templateId: t.id } },
    h('div', { class: 'tpl-head' },
      h('h3', { class: 'tpl-name' }, t.name),
      typeof score === 'number' ? h('span', { class: 'chip-score tpl-score', title: 'similarity' }, score.toFixed(3)) : null),
    h('div', { class: 'tpl-meta' },
      h('code', { class: 'tpl-id' }, t.id),
      h('div', { class: 'tpl-tags' },
        t.domain ? h('span', { class: 'chip domain' }, t.domain) : null,
        (t.tags || []).map((tag) => h('span', { class: 'chip' }, tag)))),
    h('details', { class: 'tpl-details' }, h('summary', {}, 'Details'), templateDetails(t)),
  );
  renderMath(card);
  return card;
}

function setupTemplates() {
  const search = debounce(searchTemplates, 250);
  $('#template-query').addEventListener('input', search);
  $('#template-domain').addEventListener('change', searchTemplates);
  $('#template-query').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') searchTemplates();
  });
}

// ---------------------------------------------------------------------------------------------
// Tabs, routing (#/solve, #/runs, #/runs/<id>, #/templates) and server health
// ---------------------------------------------------------------------------------------------

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
  const hash = name === 'runs' && runsState.selected ? `#/runs/${encodeURIComponent(runsState.selected)}` : `#/${name}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
  if (name === 'runs' && (!runsState.loaded || runsState.stale)) loadRuns();
  if (name === 'templates') $('#template-query').focus({ preventScroll: true });
}

function route() {
  const [, view, id] = location.hash.match(/^#\/([a-z]+)(?:\/(.+))?/) || [];
  if (view === 'runs' && id) {
    runsState.selected = decodeURIComponent(id);
    showView('runs');
    openRun(runsState.selected);
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
  setupSolve();
  setupRuns();
  setupTemplates();
  route();
  checkHealth();
}

init();
