// Form fields with labels, hints and per-field errors wired for assistive technology
// (aria-describedby + aria-invalid), and the mapping of API errors onto fields.

import { h } from './dom.js';

/**
 * A labelled field. `control` is an <input>/<select>/<textarea> (or a <fieldset> for groups,
 * which carries its own <legend>); `name` is the API field name the errors use.
 */
export function field(formId, name, label, control, hint) {
  const id = `${formId}-${name}`;
  const hintId = `${id}-hint`;
  const errId = `${id}-error`;
  const describedBy = [hint ? hintId : null, errId].filter(Boolean).join(' ');
  const isGroup = control.tagName === 'FIELDSET';
  if (!isGroup) {
    control.id = id;
    control.name = control.name || name;
  }
  control.setAttribute('aria-describedby', describedBy);
  const err = h('p', { class: 'field-error', id: errId, 'data-error-for': name, hidden: true });
  const hintEl = hint ? h('p', { class: 'hint', id: hintId }, hint) : null;
  if (isGroup) {
    control.append(...[hintEl, err].filter(Boolean));
    return h('div', { class: 'field', 'data-field': name }, control);
  }
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: id }, label), hintEl, control, err);
}

/** Shows `message` under the field named `name`; returns false when the form has no such field. */
export function setFieldError(form, name, message) {
  const wrap = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  if (!wrap) return false;
  const err = wrap.querySelector('.field-error');
  err.textContent = message;
  err.hidden = false;
  wrap.classList.add('has-error');
  for (const c of wrap.querySelectorAll('input, select, textarea')) c.setAttribute('aria-invalid', 'true');
  const group = wrap.querySelector('fieldset');
  if (group) group.setAttribute('aria-invalid', 'true');
  return true;
}

/** A message for the whole form (shown at its top, announced). */
export function setFormError(form, message) {
  const box = form.querySelector('.form-error');
  box.textContent = message;
  box.hidden = !message;
}

/** Hides the error of the field named `name` (the other fields keep theirs). */
export function clearFieldError(form, name) {
  const wrap = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  if (!wrap) return;
  const err = wrap.querySelector('.field-error');
  err.textContent = '';
  err.hidden = true;
  wrap.classList.remove('has-error');
  for (const c of wrap.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
}

export function clearErrors(form) {
  for (const e of form.querySelectorAll('.field-error')) { e.textContent = ''; e.hidden = true; }
  for (const w of form.querySelectorAll('.has-error')) w.classList.remove('has-error');
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  setFormError(form, '');
}

/** Focuses the first field with an error (or the form error). */
export function focusFirstError(form) {
  const wrap = form.querySelector('.has-error');
  const target = wrap && wrap.querySelector('input, select, textarea');
  if (target) target.focus();
  else {
    const box = form.querySelector('.form-error');
    if (box && !box.hidden) box.focus();
  }
}

/** The empty form-level error box (role=alert so it is announced when filled). */
export function formErrorBox() {
  return h('div', { class: 'form-error error', role: 'alert', tabindex: -1, hidden: true });
}

/**
 * An API error's message, with the line and column the API gives (`position`, for text that
 * does not parse) when the message does not already say where.
 */
export function apiMessage(err) {
  const pos = err.body && err.body.position;
  if (!pos || !Number.isInteger(pos.line) || !Number.isInteger(pos.column)) return err.message;
  if (/\bline \d+, column \d+/.test(err.message)) return err.message;
  return `${err.message} (line ${pos.line}, column ${pos.column})`;
}

/**
 * Shows an API error: next to its field when the API names one (`fieldOf` maps the API's
 * field, such as `filters.*.where`, to the form's; unmapped names are used as they are), else
 * at the top of the form.
 */
export function showApiError(form, err, fieldOf) {
  const message = apiMessage(err);
  // The API names the field of every refusal (from the deserializer's path for a body that
  // does not parse): no guessing from the message.
  const name = err.field ? (fieldOf && fieldOf(err.field)) || err.field : null;
  if (!(name && setFieldError(form, name, message))) setFormError(form, message);
  focusFirstError(form);
}

/** Disables a submit button while `fn` runs, with a busy label. */
export async function busy(button, label, fn) {
  const old = button.textContent;
  button.disabled = true;
  button.textContent = label;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.textContent = old;
    button.removeAttribute('aria-busy');
  }
}
