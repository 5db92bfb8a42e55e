// Runs the browser example (examples/clients/browser) for the kill-and-resume test: its backend
// on a free port, and the page in headless Debian chromium (playwright-core from tests/ui).
//
// Same environment as the other examples (TUMBLEWEED_URL, TUMBLEWEED_CONSUMER,
// TUMBLEWEED_TOKEN, OUTPUT, ACK_EVERY, ACK_INTERVAL_SECS). The page keeps its output in
// localStorage; this runner copies it to OUTPUT (one JSON line per record, replaced whole every
// 200 ms) so the driver checks it like the others.
//   SIGUSR2: the "kill": closes the browser context (the page goes away, mid-stream) and, a
//            second later, opens a new one on the same profile, so with the same localStorage;
//   SIGTERM: a last copy, then closes everything and exits.

import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const require = createRequire(path.join(root, 'tests/ui/package.json'));
const { chromium } = require('playwright-core');
const { start } = await import(path.join(root, 'examples/clients/browser/server.mjs'));

const output = process.env.OUTPUT || 'events.jsonl';
const chromiumPath = process.env.TW_UI_CHROMIUM || '/usr/bin/chromium';
const log = (m) => console.error(`browser-runner: ${m}`);

const server = await start({ port: 0 });
const pageUrl = `http://127.0.0.1:${server.address().port}/`;
const profile = mkdtempSync(path.join(tmpdir(), 'tw-example-browser-'));
let context = null;
let page = null;
let busy = Promise.resolve();

async function open() {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => log(`page: ${m.text()}`));
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(pageUrl);
  log(`page open: ${pageUrl} (profile ${profile})`);
}

async function close() {
  const c = context;
  context = null;
  page = null;
  await c?.close().catch(() => {});
}

/** Copies the page's records from localStorage to OUTPUT (atomically: temp file + rename). */
async function mirror() {
  if (!page) return;
  let lines;
  try {
    lines = await page.evaluate(() => {
      const n = Number(localStorage.getItem('tw.count') || 0);
      const out = [];
      for (let i = 0; i < n; i++) out.push(localStorage.getItem(`tw.out.${i}`));
      return out;
    });
  } catch {
    return; // the page is loading or closing
  }
  const tmp = `${output}.tmp`;
  writeFileSync(tmp, lines.map((l) => `${l}\n`).join(''));
  renameSync(tmp, output);
}

const serial = (fn) => (busy = busy.then(fn, fn));
const timer = setInterval(() => serial(mirror), 200);

process.on('SIGUSR2', () =>
  serial(async () => {
    await mirror();
    log('closing the browser context (the kill)');
    await close();
    await new Promise((r) => setTimeout(r, 1000));
    await open();
  }),
);
process.on('SIGTERM', () =>
  serial(async () => {
    clearInterval(timer);
    await mirror();
    await close();
    server.close();
    server.closeAllConnections();
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    } catch (e) {
      log(`could not remove the profile ${profile}: ${e.message}`);
    }
    process.exit(0);
  }),
);

await open();
