// Settings: an optional API key and budgets, kept in localStorage, edited in the gear panel.

import { $ } from './dom.js';

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

/** The API key to send as `Authorization: Bearer …`, or '' for none. */
export function apiKey() {
  return settings.api_key || '';
}

/** The budgets to send, or null when none is set. */
export function currentBudgets() {
  const budgets = {};
  for (const [key] of BUDGET_FIELDS) {
    const n = Number.parseInt(settings[key], 10);
    if (Number.isFinite(n) && n >= 0) budgets[key] = n;
  }
  return Object.keys(budgets).length ? budgets : null;
}

export function setupSettings() {
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
