// The snippet and its demo page in a real browser against a real local
// stack: the six scenarios of the issue, and the measurement of what a page
// load of a returning user costs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFile, rm, mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCLI, launchBrowser, startGate, startStack } from './stack.mjs';

const HMAC_SECRET = 'dev-only-hmac-secret'; // the verified demo workspace's
const TIMEOUT = { timeout: 90000 };

let cli;
let http; // the stack as `make dev` runs it
let https; // the stack with --tls
let browser;
let shots;

before(async () => {
  cli = await buildCLI();
  shots = await mkdtemp(join(tmpdir(), 'waymark-e2e-shots-'));
  // Both stacks start together: most of the wait is the engines'. Every
  // start is waited for, so that `after` stops whatever did start.
  const started = await Promise.allSettled([
    startStack(cli.bin).then((s) => { http = s; }),
    startStack(cli.bin, { tls: true }).then((s) => { https = s; }),
    launchBrowser().then((b) => { browser = b; }),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}, { timeout: 300000 });

after(async () => {
  await browser?.close();
  await Promise.all([http?.stop(), https?.stop()]);
  if (cli) await rm(cli.dir, { recursive: true, force: true });
  if (shots) await rm(shots, { recursive: true, force: true });
});

const user = (label) => `${label}-${randomUUID().slice(0, 8)}@example.com`;

// demoURL is the demo page of a stack, for a caller. origin, when given,
// serves the page from there while the API stays where the stack put it.
function demoURL(stack, { origin, ...params }) {
  const url = new URL(stack.state.demo);
  if (origin) {
    params.api = stack.state.api;
    url.host = new URL(origin).host;
  }
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

// openPage opens a page in a fresh context (its own storage) and records
// what the snippet says on the console and every call it makes to the API.
// The page's clock is Playwright's: it runs as usual, and quiet() can move
// it ahead.
async function openPage(contextOptions = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
  await context.clock.install();
  const page = await context.newPage();
  const seen = { console: [], calls: [], answers: [] };
  page.on('console', (m) => seen.console.push(m.text()));
  page.on('pageerror', (e) => seen.console.push('pageerror: ' + e.message));
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/v1/')) seen.calls.push(r);
  });
  page.on('response', async (r) => {
    if (!new URL(r.url()).pathname.startsWith('/v1/')) return;
    // Listed at once, in order; the body follows (read = its promise)
    // unless the page is gone.
    const answer = { url: r.url(), status: r.status() };
    seen.answers.push(answer);
    answer.read = (async () => {
      answer.body = await r.json().catch(() => null);
      answer.security = await r.securityDetails().catch(() => null);
    })();
    await answer.read;
  });
  return { context, page, seen, waymarkLines: () => seen.console.filter((t) => t.startsWith('waymark:')) };
}

const stateOf = (page) => page.evaluate(() => window.waymark.state && window.waymark.state());
const pending = (page) => page.evaluate(() => Object.keys(localStorage)
  .filter((k) => k.startsWith('waymark:'))
  .reduce((n, k) => n + JSON.parse(localStorage.getItem(k)).length, 0));
// quiet proves that the page sends nothing more, without waiting for it to
// maybe happen: it moves the page's clock two minutes ahead, firing every
// timer due by then (the snippet's batching delay, its retries, whose first
// comes within a minute at most), so whatever the snippet would send later
// is sent now; then the page makes a request of its own and the test waits
// for it. The browser reports requests in the order the page makes them, so
// once the barrier is seen every call made before it is in seen.calls.
async function quiet(page) {
  await page.clock.runFor('02:00');
  const barrier = `/snippet/waymark.js?e2e-barrier=${randomUUID()}`;
  const seenBarrier = page.waitForRequest((r) => r.url().endsWith(barrier));
  await page.evaluate((path) => { fetch(path).catch(() => {}); }, barrier);
  await seenBarrier;
}

// answered waits until the page has read the bodies of the answers so far.
const answered = (seen) => Promise.all(seen.answers.map((a) => a.read));

// settled waits until the snippet has nothing left to send.
async function settled(page) {
  await page.waitForFunction(() => window.waymark.version && !Object.keys(localStorage).some((k) => k.startsWith('waymark:')));
  await page.waitForLoadState('networkidle');
}

// The state of a user straight from the API, not through the page.
async function apiState(stack, body) {
  const res = await fetch(stack.state.api + '/v1/state', { method: 'POST', body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  return (await res.json()).state;
}

// Scenario 1, on the stack given: init, the tour to its end, a reload.
async function tourToTheEnd(stack, { username, screenshot }) {
  const { context, page, seen, waymarkLines } = await openPage(stack.state.caCert ? { ignoreHTTPSErrors: true } : {});
  try {
    await page.goto(demoURL(stack, { user: username }));
    await page.waitForSelector('#tour:not([hidden])');
    assert.equal(await page.textContent('#tour-steps'), 'Step 1 of 3');
    await page.click('#tour-next');
    await page.click('#hint-beacon');
    await page.click('#create-report');
    await settled(page);
    if (screenshot) await page.screenshot({ path: screenshot });
    await page.click('#tour-next');
    assert.equal(await page.textContent('#tour-next'), 'Finish');
    await page.click('#tour-next');
    await page.waitForSelector('#tour', { state: 'hidden' });
    await settled(page);
    assert.equal((await stateOf(page)).tours.welcome.status, 'finished');

    await page.reload();
    await page.waitForFunction(() => window.waymark.state && window.waymark.state());
    const state = await stateOf(page);
    assert.equal(state.tours.welcome.status, 'finished');
    assert.equal(state.tours.welcome.step, 'card-3');
    assert.ok(await page.isHidden('#tour'), 'a finished tour is not shown again');
    assert.deepEqual(waymarkLines(), []);
    assert.ok(seen.answers.every((a) => a.status < 300), JSON.stringify(seen.answers.map((a) => a.status)));
    return { seen };
  } finally {
    await context.close();
  }
}

test('1. init, the tour to its end, a reload: the state says finished', TIMEOUT, async () => {
  // The name the README's screenshot shows; this stack has not seen it.
  await tourToTheEnd(http, { username: 'ada@example.com', screenshot: process.env.WAYMARK_SCREENSHOT || join(shots, 'demo.png') });
});

test('2. offline: five events, a reload while offline, online again: all five arrive, each counted once', TIMEOUT, async () => {
  const username = user('offline');
  // The page and the API both behind the gate, one origin: the same
  // server, which the test can cut off.
  const gate = await startGate(http.state.api);
  const { context, page, seen } = await openPage();
  try {
    const url = new URL('/demo/?user=' + encodeURIComponent(username), gate.url);
    await page.goto(url.toString());
    await page.waitForFunction(() => window.waymark.state && window.waymark.state());
    await settled(page);

    // While offline the page comes from a cache, as an installed app's
    // would: the same bytes the stack served, answered by the test.
    const cached = {};
    for (const path of ['/demo/', '/demo/app.js', '/demo/style.css', '/snippet/waymark.js']) {
      const res = await fetch(new URL(path, gate.url));
      cached[path] = { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type') };
    }
    await context.route((u) => cached[u.pathname] !== undefined, (route) => {
      const { body, contentType } = cached[new URL(route.request().url()).pathname];
      return route.fulfill({ body, contentType });
    });

    gate.open = false;
    await context.setOffline(true);
    const logBefore = await http.barrier();
    await page.evaluate(() => {
      for (let i = 0; i < 5; i++) window.waymark.track('hint', 'offline-hint', 'displayed');
    });
    await quiet(page);
    assert.equal(await pending(page), 5, 'the events wait in localStorage');
    const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('waymark:'))
      .flatMap((k) => JSON.parse(localStorage.getItem(k))).map((e) => e.id));

    await page.reload();
    await page.waitForFunction(() => window.waymark.version);
    await quiet(page);
    assert.equal(await pending(page), 5, 'the reload lost nothing');
    assert.deepEqual(http.served(logBefore, await http.barrier()), [], 'nothing reached the server while offline');

    const callsBefore = seen.calls.length;
    gate.open = true;
    await context.setOffline(false);
    await page.waitForFunction(() => window.waymark.state()?.hints?.['offline-hint']?.displayed === 5);
    await settled(page);
    const sent = seen.calls.slice(callsBefore).filter((r) => r.url().endsWith('/v1/events'))
      .flatMap((r) => JSON.parse(r.postData()).events.filter((e) => e.contentId === 'offline-hint').map((e) => e.id));
    assert.deepEqual(sent, stored, 'the five events went once online, with the ids they got offline');
    const state = await apiState(http, { workspace: 'demo', username });
    assert.equal(state.hints['offline-hint'].displayed, 5, 'each counted once');
  } finally {
    await context.close();
    await gate.close();
  }
});

test('3. identity verification: a correct hash works; a tampered one gets 401, reported once, not retried', TIMEOUT, async () => {
  const username = user('verified');
  // demo-verified signs username|expiration.
  const expiration = Math.floor(Date.now() / 1000) + 3600;
  const hash = createHmac('sha256', HMAC_SECRET).update(`${username}|${expiration}`).digest('hex');

  const good = await openPage();
  try {
    await good.page.goto(demoURL(http, { workspace: 'demo-verified', user: username, hash, expiration }));
    await good.page.waitForSelector('#tour:not([hidden])');
    await good.page.click('#tour-skip');
    await settled(good.page);
    assert.equal((await stateOf(good.page)).tours.welcome.status, 'skipped');
    assert.deepEqual(good.waymarkLines(), []);
  } finally {
    await good.context.close();
  }

  const tampered = (hash[0] === '0' ? '1' : '0') + hash.slice(1);
  const bad = await openPage();
  try {
    const refused = bad.page.waitForEvent('console', (m) => m.text().startsWith('waymark: 401'));
    await bad.page.goto(demoURL(http, { workspace: 'demo-verified', user: username, hash: tampered, expiration }));
    await refused;
    await bad.page.evaluate(() => {
      for (let i = 0; i < 3; i++) window.waymark.track('hint', 'h1', 'displayed');
    });
    // The clock moved past the first retries, and every call is listed.
    await quiet(bad.page);
    await answered(bad.seen);
    assert.equal(bad.seen.calls.length, 1, 'one call, never retried');
    assert.deepEqual(bad.seen.answers.map((a) => a.status), [401]);
    assert.equal(bad.seen.answers[0].body.error.code, 'hmac_invalid');
    assert.equal(bad.waymarkLines().length, 1, bad.waymarkLines().join('\n'));
    assert.match(bad.waymarkLines()[0], /^waymark: 401 hmac_invalid/);
    assert.equal(await pending(bad.page), 3, 'the events are kept for a correct init');
    assert.equal(await stateOf(bad.page), null);
  } finally {
    await bad.context.close();
  }
});

test('4. a second origin the workspace does not allow: 403, reported once', TIMEOUT, async () => {
  const allowed = http.state.api; // http://127.0.0.1:PORT
  const other = allowed.replace('127.0.0.1', 'localhost'); // another origin, same server
  const { code } = JSON.parse(await http.cli('workspace', 'create', '--name', 'E2E origins', '--origins', allowed, '--json'));
  const username = user('origins');

  const ok = await openPage();
  try {
    await ok.page.goto(demoURL(http, { workspace: code, user: username }));
    await ok.page.waitForFunction(() => window.waymark.state && window.waymark.state());
    assert.deepEqual(ok.waymarkLines(), []);
  } finally {
    await ok.context.close();
  }

  const refused = await openPage();
  try {
    const reported = refused.page.waitForEvent('console', (m) => m.text().startsWith('waymark: 403'));
    await refused.page.goto(demoURL(http, { workspace: code, user: username, origin: other }));
    assert.equal(new URL(refused.page.url()).origin, other);
    await reported;
    await refused.page.evaluate(() => window.waymark.track('hint', 'h1', 'displayed'));
    await quiet(refused.page);
    await answered(refused.seen);
    assert.equal(refused.seen.calls.length, 1, 'one call, never retried');
    assert.deepEqual(refused.seen.answers.map((a) => a.status), [403]);
    assert.equal(refused.seen.answers[0].body.error.code, 'origin_not_allowed',
      'the body is readable: CORS headers let the page see the refusal');
    assert.deepEqual(refused.waymarkLines().map((l) => l.split(':')[1].trim()), ['403 origin_not_allowed']);
  } finally {
    await refused.context.close();
  }
});

test('5. feedback sent from the page reaches the store', TIMEOUT, async () => {
  const username = user('feedback');
  const text = `The export button is hard to find (${randomUUID()})`;
  const { context, page } = await openPage();
  try {
    await page.goto(demoURL(http, { user: username }));
    await page.fill('#feedback-text', text);
    await page.selectOption('#feedback-rating', '7');
    await page.selectOption('#feedback-category', 'question');
    await page.click('#feedback-send');
    await page.waitForSelector('#feedback-result.ok');
    const shown = (await page.textContent('#feedback-result')).match(/\(([^)]+)\)/)[1];

    const items = JSON.parse(await http.cli('feedback', 'list', '--workspace', 'demo', '--json'));
    const item = items.find((f) => f.text === text);
    assert.ok(item, 'the feedback is listed');
    assert.equal(item.id, shown);
    assert.equal(item.username, username);
    assert.equal(item.rating, 7);
    assert.equal(item.category, 'question');
    assert.ok(!Number.isNaN(Date.parse(item.createdAt)));
    assert.equal(item.environment.url, page.url());
    assert.match(item.environment.userAgent, /Chrome\//);
    assert.equal(item.environment.viewportWidth, 1280);
    assert.equal(item.environment.viewportHeight, 800);
  } finally {
    await context.close();
  }
});

test('6. over HTTPS (waymark dev --tls): the same tour, every call encrypted', TIMEOUT, async () => {
  assert.match(https.state.api, /^https:\/\/127\.0\.0\.1:\d+$/);
  // The server's certificate chains to the CA the stack wrote, for the
  // names a browser uses.
  const ca = await readFile(https.state.caCert);
  for (const host of ['127.0.0.1', 'localhost']) {
    const status = await new Promise((resolve, reject) => {
      const url = new URL('/snippet/waymark.js', https.state.api);
      url.hostname = host;
      request(url, { ca }, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject).end();
    });
    assert.equal(status, 200, host);
  }

  const { seen } = await tourToTheEnd(https, { username: user('tls') });
  assert.ok(seen.calls.length >= 3);
  for (const call of seen.calls) assert.match(call.url(), /^https:\/\//);
  for (const answer of seen.answers) {
    assert.match(answer.security.protocol, /^TLS 1\.[23]$/);
    assert.match(answer.security.issuer, /^Waymark dev CA /);
  }
});

// startReceiver is a webhook receiver on loopback that verifies every
// delivery's signature as docs/webhooks.md shows a Node receiver doing;
// deliveryOf(test) resolves with the first verified payload test() accepts,
// as soon as it arrives (or fails after a minute).
async function startReceiver() {
  const receiver = { secret: '', refused: 0, payloads: [], waiters: new Set() };
  const verify = (header, raw) => {
    let t = '';
    const signatures = [];
    for (const part of (header || '').split(',')) {
      const [key, value] = part.trim().split('=', 2);
      if (key === 't') t = value;
      if (key === 'v1') signatures.push(Buffer.from(value, 'hex'));
    }
    if (!/^\d+$/.test(t) || Math.abs(Date.now() / 1000 - Number(t)) > 300) return false;
    const expected = createHmac('sha256', receiver.secret).update(t + '.').update(raw).digest();
    return signatures.some((sig) => sig.length === expected.length && timingSafeEqual(sig, expected));
  };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      if (!verify(req.headers['waymark-signature'], raw)) {
        receiver.refused++;
        res.writeHead(401).end();
        return;
      }
      res.writeHead(204).end();
      receiver.payloads.push({ delivery: req.headers['waymark-delivery'], body: JSON.parse(raw) });
      for (const waiter of receiver.waiters) waiter();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${server.address().port}/hook`;
  receiver.deliveryOf = (what, test) => new Promise((resolve, reject) => {
    const check = () => {
      const found = receiver.payloads.find((p) => test(p.body));
      if (!found) return;
      receiver.waiters.delete(check);
      clearTimeout(timer);
      resolve(found);
    };
    const timer = setTimeout(() => {
      receiver.waiters.delete(check);
      reject(new Error(`the receiver never got ${what} (${receiver.payloads.length} verified, ${receiver.refused} refused)`));
    }, 60000);
    receiver.waiters.add(check);
    check();
  });
  receiver.close = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  });
  return receiver;
}

test('7. a screenshot attached on the page is stored with the feedback; its download returns the bytes; the webhook receiver gets it', TIMEOUT, async () => {
  const username = user('attach');
  const text = `Look at this chart (${randomUUID()})`;
  // A real PNG: the 1x1 image every browser decodes.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
  // The demo workspace delivers to a receiver of the test's own, through
  // the CLI as an operator would set it (`waymark dev` allows loopback).
  const receiver = await startReceiver();
  const { context, page, seen } = await openPage();
  try {
    const updated = JSON.parse(await http.cli('workspace', 'update', 'demo', '--webhook-url', receiver.url, '--json'));
    receiver.secret = updated.webhookSecret;
    assert.match(receiver.secret, /^whsec_/);
    await page.goto(demoURL(http, { user: username }));
    await page.fill('#feedback-text', text);
    await page.setInputFiles('#feedback-files', { name: 'chart.png', mimeType: 'image/png', buffer: png });
    await page.click('#feedback-send');
    await page.waitForSelector('#feedback-result.ok');
    await answered(seen);
    const created = seen.answers.find((a) => a.url.endsWith('/v1/feedback/attachments'));
    assert.equal(created?.status, 201);

    const items = JSON.parse(await http.cli('feedback', 'list', '--workspace', 'demo', '--json'));
    const item = items.find((f) => f.text === text);
    assert.ok(item, 'the feedback is listed');
    assert.equal(item.attachments?.length, 1);
    const [att] = item.attachments;
    assert.equal(att.id, created.body.id);
    assert.equal(att.contentType, 'image/png');
    assert.equal(att.size, png.length);
    const download = await fetch(att.url);
    assert.equal(download.status, 200);
    assert.deepEqual(Buffer.from(await download.arrayBuffer()), png);

    const { delivery, body } = await receiver.deliveryOf('the feedback', (b) => b.data?.text === text);
    assert.equal(delivery, `dlv_${item.id}`);
    assert.equal(body.workspace, 'demo');
    assert.equal(body.data.attachments?.length, 1);
    assert.equal(body.data.attachments[0].id, att.id);
    assert.equal(body.data.attachments[0].contentType, 'image/png');
    assert.equal(body.data.attachments[0].size, png.length);
    assert.equal(receiver.refused, 0, 'every delivery verifies');
  } finally {
    await context.close();
    await http.cli('workspace', 'update', 'demo', '--webhook-url', '');
    await receiver.close();
  }
});

test('a returning user\'s page load is one request, with no preflight', TIMEOUT, async () => {
  // The page on another origin than the API, as in production: the calls
  // are cross-origin, so a preflight would show.
  const origin = http.state.api.replace('127.0.0.1', 'localhost');
  const username = user('returning');
  const { context, page, seen } = await openPage();
  try {
    await page.goto(demoURL(http, { user: username, origin }));
    await page.waitForSelector('#tour:not([hidden])');
    await page.click('#tour-skip');
    await page.click('#announcement-read');
    await settled(page);

    const firstLog = await http.barrier();
    const firstCalls = seen.calls.length;
    await page.reload();
    await page.waitForFunction(() => window.waymark.state && window.waymark.state());
    await quiet(page);
    const calls = seen.calls.slice(firstCalls).map((r) => r.method() + ' ' + new URL(r.url()).pathname);
    // The gateway's access log lines; a preflight would be logged as one
    // too, and would have reached the API before the identify it precedes.
    const served = http.served(firstLog, await http.barrier()).map((e) => e.route);
    console.log(`# returning user's page load: ${calls.length} call(s) from the page (${calls}); the API served ${served.length} (${served})`);
    assert.deepEqual(calls, ['POST /v1/identify']);
    assert.deepEqual(served, ['POST /v1/identify'], 'no preflight reached the API');
    assert.ok(seen.calls.every((r) => r.headers()['content-type'].startsWith('text/plain')));
  } finally {
    await context.close();
  }
});

test('the installation `install-snippet --local` prints, pasted into a page on another origin, works: one request per load', TIMEOUT, async () => {
  const printed = await http.cli('workspace', 'install-snippet', 'demo');
  const username = user('pasted');
  assert.ok(printed.includes('REPLACE-WITH-THE-USERNAME'));
  const html = `<!doctype html><html><head><link rel="icon" href="data:,">${printed.replace('REPLACE-WITH-THE-USERNAME', username)}</head>
<body><p>A customer's app</p></body></html>`;
  const app = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
  await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
  const { context, page, seen, waymarkLines } = await openPage();
  try {
    const url = `http://localhost:${app.address().port}/`;
    for (const load of ['first', 'returning']) {
      const logBefore = await http.barrier();
      const callsBefore = seen.calls.length;
      if (load === 'first') await page.goto(url);
      else await page.reload();
      await page.waitForFunction(() => window.waymark.state && window.waymark.state());
      await quiet(page);
      const calls = seen.calls.slice(callsBefore).map((r) => r.method() + ' ' + r.url());
      const served = http.served(logBefore, await http.barrier()).map((e) => e.route);
      console.log(`# ${load} page load with the printed installation: ${calls.length} call(s) (${calls}); the API served ${served}`);
      assert.deepEqual(calls, [`POST ${http.state.api}/v1/identify`]);
      // The first load also fetches waymark.js from the API; the browser keeps it.
      const script = load === 'first' ? ['GET /waymark.js'] : [];
      assert.deepEqual(served.sort(), [...script, 'POST /v1/identify'], 'no preflight reached the API');
    }
    assert.deepEqual(await stateOf(page), { tours: {}, hints: {}, announcements: {}, checklists: {}, surveys: {} });
    assert.deepEqual(waymarkLines(), []);
  } finally {
    await context.close();
    await new Promise((resolve) => app.close(resolve));
  }
});
