// The pieces a trajectory is drawn with: the step card, the revision banner, the answer box,
// the footer, and the error and notice boxes. TrajectoryView (trajectory.js) places them.

import { h, clear, fill, plural, formatNumber, formatSeconds } from './dom.js';
import { renderMath, asMath, trimAroundDisplayMath, valueAsMath, inlineLatex, mathSpan } from './math.js';

const CHECK_LOOK = {
  verified: { mark: '✓', tone: 'ok' },
  unchecked: { mark: '·', tone: 'neutral' },
  mismatch: { mark: '✗', tone: 'bad' },
  error: { mark: '✗', tone: 'bad' },
  failed: { mark: '✗', tone: 'bad' },
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
export class StepCard {
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

/**
 * A plan revision after step `at` (0-based). failed=true: no usable revision, the plan was
 * kept. Otherwise the replaced steps are listed in a <details>; withAttempt adds a slot
 * (`.superseded-wrap`) for the failed attempt, which the caller moves in once placed.
 */
export function revisionBanner(at, { failed = false, reason = '', replaced = [], withAttempt = false } = {}) {
  const banner = h('li', { class: failed ? 'revision-banner tone-warn' : 'revision-banner', dataset: { afterStep: String(at) } },
    h('div', { class: 'revision-title' },
      failed ? `↻ Revision after step ${at + 1} failed; the plan was kept.` : `↻ Plan revised after step ${at + 1}`),
    reason ? h('p', { class: 'revision-reason' }, inlineLatex(reason)) : null,
    !failed && replaced.length
      ? h('details', { class: 'revision-old' },
          h('summary', {}, `Replaced ${plural(replaced.length, 'planned step')}${withAttempt ? ' · the failed attempt' : ''}`),
          h('ol', { class: 'old-steps', start: at + 1 },
            replaced.map((s) => h('li', {}, h('code', {}, s.template_id), ' ', s.goal))),
          withAttempt ? h('div', { class: 'superseded-wrap' }, h('p', { class: 'label' }, 'The discarded attempt')) : null)
      : null);
  renderMath(banner);
  return banner;
}

/** The final answer with its verification and, when an expected answer was given, correctness. */
export function answerBox({ answer, verified, verification, correct }, expected, id = null) {
  const hasAnswer = answer !== null && answer !== undefined && answer !== '';
  const box = h('section', { class: `answer-box ${verified ? 'is-verified' : ''}`, id },
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
  renderMath(box.querySelector('.answer-value'));
  renderMath(box.querySelector('.answer-verification'));
  return box;
}

/** The footer's contents: usage per role, LLM calls, timings and failures of a finished run. */
export function footerParts(result) {
  const usage = Object.entries(result.usage || {});
  const timings = Object.entries(result.timings || {}).filter(([name]) => name !== 'total');
  return [
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
  ];
}

function resumeButton(onClick) {
  return h('button', { type: 'button', class: 'button resume-button', onClick }, 'Resume');
}

/** A red error box; with `onResume` it offers to resume run `runId`. */
export function errorBox({ type, message, fields = [], runId = null, onResume = null, id = null }) {
  return h('div', { class: 'error-box', id, role: 'alert', dataset: { type } },
    h('div', { class: 'error-title' }, ERROR_TITLES[type] || 'Error'),
    h('p', { class: 'error-message' }, message),
    fields.length ? h('ul', { class: 'error-fields' }, fields.map((f) => h('li', {}, h('code', {}, f.field), ` ${f.message}`))) : null,
    type === 'authentication_error' ? h('p', { class: 'muted' }, 'Set the API key in the settings (gear icon, top right).') : null,
    onResume
      ? h('div', { class: 'error-actions' },
          h('p', { class: 'muted' }, `Run ${runId} was saved and can be resumed where it stopped.`),
          resumeButton(onResume))
      : null,
  );
}

/** A neutral notice (stopped by the user, interrupted run), with a Resume button when `onResume`. */
export function noticeBox(text, onResume = null) {
  return h('div', { class: 'notice-box' }, h('p', {}, text), onResume ? resumeButton(onResume) : null);
}
