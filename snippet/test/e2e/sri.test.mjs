// The installation `install-snippet` prints: pasted into a page on another
// origin, it loads waymark.js from the stack's /waymark.js with Subresource
// Integrity; the browser keeps that copy, and refuses one altered in transit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { buildCLI, launchBrowser, startStack } from './stack.mjs';
import { startApp } from './pages.mjs';

const TIMEOUT = { timeout: 90000 };
let cli;
let stack;
let browser;
let app;

before(async () => {
  cli = await buildCLI();
  const started = await Promise.allSettled([
    startStack(cli.bin).then((s) => { stack = s; }),
    launchBrowser().then((b) => { browser = b; }),
    startApp().then((a) => { app = a; }),
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

// installed puts the printed installation into a page of the app, for a user.
async function installed(path) {
  const printed = await stack.cli('workspace', 'install-snippet', 'demo');
  const tag = /<script async src="([^"]+)" integrity="(sha384-[^"]+)" crossorigin="anonymous"><\/script>/.exec(printed);
  assert.ok(tag, printed);
  const username = `sri-${randomUUID().slice(0, 8)}@example.com`;
  app.pages[path] = `<!doctype html><html><head><link rel="icon" href="data:,">${printed.replace('REPLACE-WITH-THE-USERNAME', username)}</head><body></body></html>`;
  return { src: tag[1].replaceAll('&amp;', '&'), integrity: tag[2], url: app.url + path };
}

test('the printed script tag loads the served waymark.js, and the next page load takes it from the cache', TIMEOUT, async () => {
  const { src, integrity, url } = await installed('/sri.html');
  assert.ok(src.startsWith(stack.state.api + '/waymark.js?v='), src);
  const context = await browser.newContext();
  try {
    const p = await context.newPage();
    for (const load of ['first', 'returning']) {
      const before = stack.requests.length;
      await p.goto(url);
      await p.waitForFunction(() => window.waymark.version && window.waymark.state());
      const routes = stack.requests.slice(before).filter((e) => e.method).map((e) => e.route);
      console.log(`# ${load} page load: the API served ${routes.join(', ')}`);
      if (load === 'first') {
        assert.deepEqual(routes.sort(), ['GET /waymark.js', 'POST /v1/identify']);
      } else {
        // The versioned URL is cached for good: only identify reaches the API.
        assert.deepEqual(routes, ['POST /v1/identify']);
      }
    }
    assert.equal(await p.evaluate(() => document.querySelector('script[integrity]').integrity), integrity);
  } finally {
    await context.close();
  }
});

test('a waymark.js altered on its way is refused: nothing runs, nothing is sent', TIMEOUT, async () => {
  const { src, url } = await installed('/tampered.html');
  const original = await (await fetch(src)).text();
  const context = await browser.newContext();
  try {
    // One character changed, every header as the stack sends them.
    await context.route((u) => u.pathname === '/waymark.js', (route) => route.fulfill({
      status: 200,
      contentType: 'text/javascript; charset=utf-8',
      headers: { 'access-control-allow-origin': '*' },
      body: original.replace('const BATCH = 25', 'const BATCH = 24'),
    }));
    const p = await context.newPage();
    const messages = [];
    p.on('console', (m) => messages.push(m.text()));
    const calls = [];
    p.on('request', (r) => new URL(r.url()).pathname.startsWith('/v1/') && calls.push(r.url()));
    const refused = p.waitForEvent('console', (m) => /integrity/i.test(m.text()));
    await p.goto(url);
    await refused;
    assert.equal(await p.evaluate(() => window.waymark.version), undefined, 'the stub is still there: the file did not run');
    assert.deepEqual(calls, []);
    assert.ok(messages.some((t) => /SHA-384.*blocked/.test(t)), messages.join('\n'));
  } finally {
    await context.close();
  }
});
