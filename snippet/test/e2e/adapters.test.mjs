// driver.js and Shepherd tours bound with the adapters, in Chromium against
// a local stack: each tour recorded from the library's own events, finished
// on one page load and not shown on the next, resumed at the step reached,
// and a skip remembered on another browser profile (another device).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { buildCLI, launchBrowser, startStack } from './stack.mjs';
import { drained, startApp, tourState } from './pages.mjs';

const TIMEOUT = { timeout: 90000 };
let cli;
let stack;
let browser;
let app;

// Three buttons to tour; the tour is bound and started as the README shows.
const page = (setup) => `<!doctype html><html><head><link rel="icon" href="data:,">
<link rel="stylesheet" href="/node_modules/driver.js/dist/driver.css">
<link rel="stylesheet" href="/node_modules/shepherd.js/dist/css/shepherd.css"></head>
<body><button id="a">Reports</button> <button id="b">Export</button> <button id="c">Share</button>
<script type="module">
  import { init } from '/index.mjs';
  const q = new URLSearchParams(location.search);
  init('demo', { endpoint: q.get('api'), user: { username: q.get('user') } });
  ${setup}
</script></body></html>`;

const pages = {
  '/driver.html': page(`
  import { driver } from '/node_modules/driver.js/dist/driver.js.mjs';
  import { bindDriver } from '/adapters/driver.mjs';
  const tour = driver({ animate: false, steps: ['#a', '#b', '#c'].map((element, i) => ({ element, popover: { title: 'Step ' + (i + 1) } })) });
  window.shown = bindDriver(tour, q.get('tour'))();`),
  '/shepherd.html': page(`
  import Shepherd from '/node_modules/shepherd.js/dist/js/shepherd.mjs';
  import { bindShepherd } from '/adapters/shepherd.mjs';
  const next = { text: 'Next', action() { return this.next(); } };
  const tour = new Shepherd.Tour({ defaultStepOptions: { cancelIcon: { enabled: true } }, steps: [
    { id: 'reports', text: 'Reports', attachTo: { element: '#a', on: 'bottom' }, buttons: [next] },
    { id: 'export', text: 'Export', attachTo: { element: '#b', on: 'bottom' }, buttons: [next] },
    { id: 'share', text: 'Share', attachTo: { element: '#c', on: 'bottom' }, buttons: [{ ...next, text: 'Done' }] },
  ] });
  window.shown = bindShepherd(tour, q.get('tour'))();`),
};

// How each library's tour is driven by a user.
const libraries = {
  driver: {
    page: '/driver.html',
    current: async (p) => (await p.locator('.driver-popover-title').textContent()).trim(),
    stepNames: ['Step 1', 'Step 2', 'Step 3'],
    // The recorded step of the second step: driver.js steps are indexes.
    secondStep: '1',
    next: (p) => p.click('.driver-popover-next-btn'),
    close: (p) => p.click('.driver-popover-close-btn'),
    visible: (p) => p.locator('.driver-popover').count(),
  },
  shepherd: {
    page: '/shepherd.html',
    current: (p) => p.locator('.shepherd-element:not([hidden])').getAttribute('data-shepherd-step-id'),
    stepNames: ['reports', 'export', 'share'],
    secondStep: 'export',
    next: (p) => p.click('.shepherd-element:not([hidden]) .shepherd-button'),
    close: (p) => p.click('.shepherd-element:not([hidden]) .shepherd-cancel-icon'),
    visible: (p) => p.locator('.shepherd-element:not([hidden])').count(),
  },
};

before(async () => {
  cli = await buildCLI();
  const started = await Promise.allSettled([
    startStack(cli.bin).then((s) => { stack = s; }),
    launchBrowser().then((b) => { browser = b; }),
    startApp(pages).then((a) => { app = a; }),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}, { timeout: 300000 });

after(async () => {
  await browser?.close();
  await stack?.stop();
  await app?.close();
  if (cli) await rm(cli.dir, { recursive: true, force: true });
});

// open loads a library's page for a user in a browser profile (context).
async function open(context, lib, username, tour) {
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  const url = new URL(lib.page, app.url);
  for (const [k, v] of Object.entries({ api: stack.state.api, user: username, tour })) url.searchParams.set(k, v);
  await p.goto(url.toString());
  p.shown = await p.evaluate(() => window.shown);
  p.errors = errors;
  return p;
}

// The server's state, not the page's.
async function serverTour(username, tour) {
  const res = await fetch(stack.state.api + '/v1/state', { method: 'POST', body: JSON.stringify({ workspace: 'demo', username }) });
  return (await res.json()).state.tours[tour];
}

for (const [name, lib] of Object.entries(libraries)) {
  test(`${name}: finished on one page load, recorded step by step, not shown on the next`, TIMEOUT, async () => {
    const username = `${name}-done-${randomUUID().slice(0, 8)}@example.com`;
    const tour = `${name}-welcome`;
    const context = await browser.newContext();
    try {
      const p = await open(context, lib, username, tour);
      assert.equal(p.shown, true);
      const seen = [];
      for (const _ of lib.stepNames) {
        seen.push(await lib.current(p));
        await lib.next(p);
      }
      assert.deepEqual(seen, lib.stepNames);
      await tourState(p, tour, { status: 'finished' });
      await drained(p);
      const stored = await serverTour(username, tour);
      assert.equal(stored.status, 'finished');
      assert.equal(stored.step, name === 'driver' ? '2' : 'share', 'the last step reached is recorded');

      await p.reload();
      assert.equal(await p.evaluate(() => window.shown), false, 'once: a finished tour is not shown again');
      assert.equal(await lib.visible(p), 0);
      assert.deepEqual(p.errors, []);
    } finally {
      await context.close();
    }
  });

  test(`${name}: left at the second step, the next page load resumes there`, TIMEOUT, async () => {
    const username = `${name}-resume-${randomUUID().slice(0, 8)}@example.com`;
    const tour = `${name}-resume`;
    const context = await browser.newContext();
    try {
      const p = await open(context, lib, username, tour);
      await lib.next(p);
      assert.equal(await lib.current(p), lib.stepNames[1]);
      await tourState(p, tour, { status: 'not_finished', step: lib.secondStep });
      await drained(p);

      await p.reload();
      assert.equal(await p.evaluate(() => window.shown), true);
      assert.equal(await lib.current(p), lib.stepNames[1], 'resumed at the step reached');
      await lib.next(p);
      await lib.next(p);
      await tourState(p, tour, { status: 'finished' });
      assert.deepEqual(p.errors, []);
    } finally {
      await context.close();
    }
  });

  test(`${name}: skipped on one device, not shown on another`, TIMEOUT, async () => {
    const username = `${name}-skip-${randomUUID().slice(0, 8)}@example.com`;
    const tour = `${name}-skip`;
    const laptop = await browser.newContext();
    const phone = await browser.newContext(); // another profile: no shared storage
    try {
      const p = await open(laptop, lib, username, tour);
      await lib.close(p);
      await tourState(p, tour, { status: 'skipped' });
      await drained(p);
      assert.equal((await serverTour(username, tour)).status, 'skipped');

      const other = await open(phone, lib, username, tour);
      assert.equal(other.shown, false, 'the skip came from the server, not from local storage');
      assert.equal(await lib.visible(other), 0);
      assert.deepEqual([...p.errors, ...other.errors], []);
    } finally {
      await laptop.close();
      await phone.close();
    }
  });
}
