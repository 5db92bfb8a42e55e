// Sign-in: the admin token, checked against the API, kept in sessionStorage (this tab only).

import { api, setToken, ApiError } from '../api.js';
import { h, replace } from '../dom.js';
import { field, formErrorBox, clearErrors, setFieldError, setFormError, focusFirstError, busy } from '../forms.js';

export function signInPage(main, ctx) {
  const input = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, autocapitalize: 'off' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { id: 'sign-in', novalidate: true, 'aria-labelledby': 'sign-in-title' },
    formErrorBox(),
    field('sign-in', 'token', 'Admin token', input, 'The sink\'s TUMBLEWEED_ADMIN_TOKEN. It is kept for this browser tab only and sent as an Authorization header.'),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const token = input.value.trim();
    if (!token) {
      setFieldError(form, 'token', 'Enter the admin token.');
      focusFirstError(form);
      return;
    }
    await busy(submit, 'Signing in…', async () => {
      try {
        await api('GET', '/v1/consumers', undefined, { token });
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          setFieldError(form, 'token', `This token was refused: ${err.message}`);
        } else {
          setFormError(form, `Could not check the token: ${err.message}`);
        }
        focusFirstError(form);
        return;
      }
      setToken(token);
      const next = ctx.query.get('next');
      ctx.go(next && next.startsWith('#/') && !next.startsWith('#/sign-in') ? next : '#/sources');
    });
  });
  replace(main,
    h('h1', { id: 'sign-in-title' }, 'Sign in'),
    ctx.notice ? h('p', { class: 'notice', role: 'status' }, ctx.notice) : null,
    form);
  input.focus();
}
