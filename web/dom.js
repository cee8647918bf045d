// DOM building. Every element is made with createElement and every piece of text goes in through
// textContent or a Text node, so user text can never become markup (there is no innerHTML anywhere).

/** h('button', {class: 'x', onclick: fn, dataset: {id: 1}}, 'label', child, [more]) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (typeof value !== 'string' && key in el) el[key] = value; // booleans like disabled, hidden
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Replaces a container's children and puts keyboard focus back on the element with the same
 * data-key, so a live update (presence, unread) does not throw a keyboard user out of a list.
 */
export function replaceKeepingFocus(container, children, { preventScroll = false } = {}) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  // A text field moved to its new place keeps its caret (an edit in progress).
  const caret = typeof active?.selectionStart === 'number' ? [active.selectionStart, active.selectionEnd] : null;
  container.replaceChildren(...children);
  if (key === undefined) return;
  const next = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
  next?.focus({ preventScroll });
  if (next && next === active && caret) next.setSelectionRange(...caret);
}

let fieldCount = 0;

/** A labelled form field; the hint is tied to the input with aria-describedby, not in its name. */
export function field(label, input, hint) {
  fieldCount += 1;
  input.id ||= `field-${fieldCount}`;
  const hintEl = hint ? h('span', { class: 'field-hint', id: `${input.id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { class: 'field-label', for: input.id }, label), input, hintEl);
}
