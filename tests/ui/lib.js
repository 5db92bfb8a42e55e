// Helpers of the UI browser tests: settings from run.sh, PostgreSQL through psql, the sink's
// API from node, the browser (Debian chromium driven by playwright-core).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the UI tests with tests/ui/run.sh`);
  return v;
}

export const env = {
  base: need('TW_UI_BASE_URL').replace(/\/$/, ''),
  token: need('TW_UI_ADMIN_TOKEN'),
  pgHost: process.env.TW_PG_HOST || '127.0.0.1',
  pgPort: process.env.TW_PG_PORT || '15432',
  artifacts: process.env.TW_UI_ARTIFACTS || path.join(ROOT, 'tests/artifacts/ui'),
  chromium: process.env.TW_UI_CHROMIUM || '/usr/bin/chromium',
};

/** Runs SQL with psql as postgres (trust auth on the local stack); returns the unaligned output. */
export function psql(db, sql) {
  return execFileSync('psql', ['-h', env.pgHost, '-p', env.pgPort, '-U', 'postgres', '-d', db,
    '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The sink's admin API from node (for setup checks and cleanup, never for what the UI does). */
export async function adminApi(method, p, body) {
  const res = await fetch(env.base + p, {
    method,
    headers: { Authorization: `Bearer ${env.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { raw: text }; }
  return { status: res.status, json };
}

export async function waitFor(what, fn, { timeoutMs = 30000, intervalMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A fresh browser profile; returns { context, dispose }. */
export async function launch() {
  const profile = mkdtempSync(path.join(tmpdir(), 'tw-ui-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 },
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  return {
    context,
    async dispose() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Basic accessibility of what is on screen: every form control has a label (or aria-label),
 * every button and link has a name, one h1, no duplicate ids. Returns the problems found.
 */
export async function a11yProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const visible = (el) => !el.closest('[hidden], dialog:not([open]), .visually-hidden') && el.getClientRects().length > 0;
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (!visible(el) || el.type === 'hidden') continue;
      if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')) {
        problems.push(`unlabelled ${el.tagName.toLowerCase()} ${el.id || el.name}`);
      }
    }
    for (const el of document.querySelectorAll('button, a[href]')) {
      if (!visible(el)) continue;
      if (!(el.getAttribute('aria-label') || el.textContent.trim())) problems.push(`nameless ${el.tagName.toLowerCase()} ${el.outerHTML.slice(0, 80)}`);
    }
    const h1s = document.querySelectorAll('main h1').length;
    if (h1s !== 1) problems.push(`${h1s} h1 elements in main`);
    const ids = new Map();
    for (const el of document.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) || 0) + 1);
    for (const [id, n] of ids) if (n > 1) problems.push(`id ${id} used ${n} times`);
    return problems;
  });
}

/** Screenshots the page into the artifacts and checks its basic accessibility. */
export async function screenshot(page, name) {
  const problems = await a11yProblems(page);
  if (problems.length) throw new Error(`accessibility problems on ${name}: ${problems.join('; ')}`);
  mkdirSync(env.artifacts, { recursive: true });
  await page.screenshot({ path: path.join(env.artifacts, `${name}.png`), fullPage: true });
}
