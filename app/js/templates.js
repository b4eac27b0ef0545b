// Templates view: search the thought-template library, one card per hit.

import { $, h, clear, fill, plural, truncate, debounce } from './dom.js';
import { renderMath, asMath } from './math.js';
import { apiJson } from './api.js';

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

export function setupTemplates() {
  const search = debounce(searchTemplates, 250);
  $('#template-query').addEventListener('input', search);
  $('#template-domain').addEventListener('change', searchTemplates);
  $('#template-query').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') searchTemplates();
  });
}
