// Math: KaTeX (vendored by app/build.sh) typesets LaTeX in text nodes when it is loaded;
// without it everything still works and math stays raw text.

import { h } from './dom.js';

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
export function renderMath(el) {
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
export function asMath(text) {
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
export function trimAroundDisplayMath(el) {
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
export function valueAsMath(text) {
  const s = String(text ?? '');
  if (!katexAvailable() || !s.trim() || /\$|\\\(|\\\[/.test(s)) return s;
  return `\\(${s}\\)`;
}

/**
 * Checker messages quote LaTeX values without delimiters ("stated \frac{1}{3} but …"):
 * wrap each space-free token that holds a backslash command so it gets typeset.
 */
export function inlineLatex(text) {
  const s = String(text ?? '');
  if (!katexAvailable() || /\$|\\\(|\\\[/.test(s)) return s;
  return s.replace(/\S*\\[A-Za-z]+\S*/g, (token) => {
    const [, body, tail] = token.match(/^(.*?)([.,;:)]*)$/);
    return `\\(${body}\\)${tail}`;
  });
}

/** A <span> holding `text` (wrapped as math when it is a bare formula), typeset. */
export function mathSpan(text, className = '', wrap = asMath) {
  const span = h('span', { class: className }, wrap(text));
  renderMath(span);
  return span;
}
