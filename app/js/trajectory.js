// The trajectory renderer: one run, drawn live (event by event, from the streamed solve) or
// from a stored SolveResult, with the same cards either way.

import { h, clear, fill, plural } from './dom.js';
import { renderMath, mathSpan } from './math.js';
import { fetchTemplate } from './api.js';
import { StepCard, revisionBanner, answerBox, footerParts, errorBox, noticeBox } from './cards.js';

const NODE_PROGRESS = {
  plan: () => 'Planning a trajectory of templates…',
  retrieve: () => 'Loading the planned templates…',
  instantiate: (step) => (step === null ? 'Working on the next step…' : `Working on step ${step + 1}…`),
  check: (step) => (step === null ? 'Checking the step…' : `Checking step ${step + 1}…`),
  revise: () => 'Revising the plan…',
  answer: () => 'Writing and verifying the final answer…',
};

export class TrajectoryView {
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
      this.placeBanner(revisionBanner(at, { failed: true, reason }), anchor, true);
      return;
    }

    const replaced = oldSteps || this.plan.slice(at);
    const failedCard = anchor && anchor.el.dataset.state !== 'pending' ? anchor : null;
    const why = reason || failedCard?.checkDetail || '';
    const banner = revisionBanner(at, { reason: why, replaced, withAttempt: !!failedCard });
    this.placeBanner(banner, anchor, false);
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

  /** A revision banner goes before the step it replaced, or after the step it kept (failed). */
  placeBanner(banner, anchor, failed) {
    if (!anchor) this.stepsEl.append(banner);
    else if (failed) anchor.el.after(banner);
    else anchor.el.before(banner);
  }

  // --- answer, footer, errors ----------------------------------------------------------------

  /** `outcome`: {answer, verified, verification, correct} (an `answer` event or a SolveResult). */
  showAnswer(outcome, expected = this.expected) {
    fill(this.answerSlot, answerBox(outcome, expected, this.live ? 'answer' : null));
  }

  /** Usage, calls, timings and failures of a finished run. */
  showFooter(result) {
    fill(this.footerEl, footerParts(result));
    this.footerEl.hidden = false;
  }

  /** A red error box; a timeout (or a dropped stream) gets a Resume button. */
  showError({ type = 'error', message = 'Something went wrong.', runId = null, fields = [], resumable } = {}) {
    const id = runId || this.runId;
    const canResume = (resumable ?? (type === 'timeout')) && id && this.onResume;
    fill(this.noticeSlot, errorBox({
      type,
      message,
      fields,
      runId: id,
      onResume: canResume ? () => this.onResume(id, this) : null,
      id: this.live ? 'error' : null,
    }));
    this.setProgress('');
    this.cards.get(this.activeStep)?.setState('done');
  }

  /** A neutral notice (stopped by the user, interrupted run) with an optional Resume button. */
  showNotice(text, { resumable = false } = {}) {
    const id = this.runId;
    fill(this.noticeSlot, noticeBox(text, resumable && id && this.onResume ? () => this.onResume(id, this) : null));
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
    this.placeBanner(revisionBanner(at, { failed, reason, replaced: oldSteps }), this.cards.get(at), failed);
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
