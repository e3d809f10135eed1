import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, response, defaultAnswer, offline } from './harness.mjs';

const EU = 'https://eu.api.example';
const US = 'https://us.api.example';
const user = { username: 'ada@example.com', firstname: 'Ada' };
const plain = (v) => JSON.parse(JSON.stringify(v));

// init with the EU endpoint and let identify answer.
async function ready(page, opts = {}) {
  const p = page.waymark.init('ws1', { endpoint: EU, user, ...opts });
  await page.advance(0);
  return p;
}

test('the stub queue is replayed in order once the file loads', async () => {
  const heard = [];
  const stub = { q: [], e: { eu: EU, us: US } };
  const call = (m, ...args) => stub.q.push([m, args]);
  call('on', 'state', (s) => heard.push(plain(s)));
  call('track', 'tour', 'welcome', 'started');
  call('init', 'ws1', { region: 'us', user });
  call('track', 'hint', 'h1', 'displayed');
  const page = open({ stub });
  assert.equal(typeof page.waymark.init, 'function', 'the stub is replaced by the real API');
  await page.advance(1000);
  assert.deepEqual(page.requests.map((r) => r.url), [US + '/v1/identify', US + '/v1/events']);
  const events = page.requests[1].body.events;
  assert.deepEqual(events.map((e) => e.content + ':' + e.action), ['tour:started', 'hint:displayed'],
    'calls made before init are kept, in order');
  assert.deepEqual(heard, [{}, { hints: { h1: { displayed: 1 } } }]);
});

test('a page load of a returning user is one request, with no preflight', async () => {
  const page = open();
  const state = await ready(page, { hmac: { hash: 'ab12' } });
  assert.equal(page.requests.length, 1);
  const [req] = page.requests;
  assert.equal(req.url, EU + '/v1/identify');
  assert.equal(req.init.method, 'POST');
  assert.equal(req.init.headers, undefined, 'no header of ours: fetch labels a string body text/plain');
  assert.equal(typeof req.init.body, 'string');
  assert.equal(req.init.credentials, 'omit');
  assert.deepEqual(req.body, { workspace: 'ws1', user, hmac: { hash: 'ab12' } });
  assert.deepEqual(plain(state), {});
  assert.deepEqual(plain(page.waymark.state()), {});
  await page.advance(60000);
  assert.equal(page.requests.length, 1, 'nothing more without events');
});

test('region picks the endpoint given at installation; endpoint overrides it', async () => {
  const page = open({ stub: { q: [], e: { eu: EU + '/', us: US } } });
  page.waymark.init('ws1', { region: 'us', user });
  await page.advance(0);
  page.waymark.init('ws1', { user });
  await page.advance(0);
  page.waymark.init('ws1', { region: 'us', endpoint: 'https://own.example', user });
  await page.advance(0);
  assert.deepEqual(page.requests.map((r) => r.url), [US + '/v1/identify', EU + '/v1/identify', 'https://own.example/v1/identify']);
});

test('init without an endpoint, a workspace or a username says so and sends nothing', async () => {
  const page = open();
  assert.equal(await page.waymark.init('ws1', { region: 'us', user }), null);
  assert.equal(await page.waymark.init('', { endpoint: EU, user }), null);
  assert.equal(await page.waymark.init('ws1', { endpoint: EU, user: {} }), null);
  await page.advance(1000);
  assert.equal(page.requests.length, 0);
  assert.equal(page.errors.length, 3);
  assert.match(page.errors[0], /endpoint for region us/);
});

test('events are batched: one request for calls made together, at most 25 per request', async () => {
  const page = open();
  await ready(page);
  page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(100);
  page.waymark.track('hint', 'h1', 'dismissed');
  await page.advance(149);
  assert.equal(page.requests.length, 1, 'the short delay gathers calls');
  await page.advance(1);
  assert.equal(page.requests.length, 2);
  assert.equal(page.requests[1].body.events.length, 2);

  for (let i = 0; i < 30; i++) page.waymark.track('tour', 't' + i, 'advanced', { step: 's' + i, ignored: 1 });
  await page.advance(0);
  const sizes = page.requests.slice(2).map((r) => r.body.events.length);
  assert.deepEqual(sizes, [25, 5], 'a full batch goes at once, the rest after it');
  const sent = page.requests.slice(2).flatMap((r) => r.body.events);
  assert.equal(new Set(sent.map((e) => e.id)).size, 30, 'every event has its own id');
  assert.match(sent[0].id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(Object.keys(sent[0]).sort(), ['action', 'at', 'content', 'contentId', 'id', 'step'],
    'only the fields the API knows are sent');
  assert.deepEqual(page.stored(), [], 'acknowledged events leave the storage');
});

test('at is stamped when track is called, not when the batch is sent', async () => {
  const page = open({ answer: offline });
  page.waymark.init('ws1', { endpoint: EU, user });
  const before = Date.now();
  page.waymark.track('announcement', 'a1', 'read', { item: undefined, answer: null });
  const after = Date.now();
  await page.advance(0);
  const [ev] = JSON.parse(page.stored()[0][1]);
  const at = Date.parse(ev.at);
  assert.ok(at >= before && at <= after, ev.at);
  assert.deepEqual(Object.keys(ev).sort(), ['action', 'at', 'content', 'contentId', 'id']);
});

test('network errors, 429 and 503 are retried with growing, jittered delays, keeping the event ids', async () => {
  let failures = 6;
  const page = open({
    answer(req) {
      if (req.path !== '/v1/events') return defaultAnswer(req);
      failures--;
      if (failures === 1) return response(503, { error: { code: 'unavailable', message: 'x' } }, { 'retry-after': '1' });
      if (failures === 0) return defaultAnswer(req);
      if (failures === 2) return response(429, { error: { code: 'throttled' } }, { 'retry-after': '90' });
      offline();
    },
  });
  await ready(page);
  page.waymark.track('hint', 'h1', 'displayed');
  page.waymark.track('hint', 'h2', 'displayed');
  await page.advance(DAY);
  const sends = page.requests.filter((r) => r.path === '/v1/events');
  assert.equal(sends.length, 6);
  const ids = sends.map((r) => r.body.events.map((e) => e.id).join());
  assert.equal(new Set(ids).size, 1, 'a retried batch keeps its ids');
  // The retry delays: after the batch delay, spans of 1, 2, 4, 8 and 16 s,
  // each between half and all of its span; Retry-After lifts the fourth.
  const delays = page.delays.filter((d) => d > 250);
  assert.equal(delays.length, 5, String(page.delays));
  const spans = [1000, 2000, 4000, 8000, 16000];
  delays.forEach((d, i) => {
    if (i === 3) assert.ok(d >= 90000, 'Retry-After honoured: ' + d);
    else assert.ok(d >= spans[i] / 2 && d <= spans[i], `delay ${i}: ${d}`);
  });
  assert.equal(page.errors.length, 0, 'retried failures are not reported');
  assert.deepEqual(page.stored(), []);
});

const DAY = 24 * 3600 * 1000;

test('the backoff stops growing at a minute', async () => {
  const page = open({ answer: (req) => (req.path === '/v1/identify' ? offline() : defaultAnswer(req)) });
  page.waymark.init('ws1', { endpoint: EU, user });
  await page.advance(30 * 60000);
  const delays = page.delays.filter((d) => d > 0);
  assert.ok(delays.length > 20);
  assert.ok(Math.max(...delays) <= 60000);
  assert.ok(delays.slice(-5).every((d) => d >= 30000));
});

test('a new event during a backoff does not cut the backoff short', async () => {
  let down = true;
  const page = open({ answer: (req) => (down && req.path === '/v1/events' ? offline() : defaultAnswer(req)) });
  await ready(page);
  page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(250);
  assert.equal(page.requests.length, 2, 'the batch went and failed');
  // The retry waits at least 500 ms; an event must not bring it forward to
  // the 250 ms batch delay.
  page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(400);
  assert.equal(page.requests.length, 2, 'the pending retry keeps its delay');
  down = false;
  await page.advance(60000);
  assert.equal(page.requests.length, 3);
  assert.equal(page.requests[2].body.events.length, 2);
});

test('another 4xx is reported once and not retried; only the event the server names is dropped', async () => {
  const page = open({
    answer(req) {
      if (req.path !== '/v1/events') return defaultAnswer(req);
      const i = req.body.events.findIndex((e) => e.contentId === 'bad');
      if (i >= 0) {
        return response(400, { error: { code: 'invalid_argument', message: `events[${i}].action: "finished" is not an action of hint`, field: `events[${i}].action` } });
      }
      return defaultAnswer(req);
    },
  });
  await ready(page);
  page.waymark.track('hint', 'h1', 'displayed');
  page.waymark.track('hint', 'bad', 'finished');
  page.waymark.track('hint', 'h2', 'displayed');
  page.waymark.track('hint', 'bad', 'finished');
  await page.advance(DAY);
  const sends = page.requests.filter((r) => r.path === '/v1/events').map((r) => r.body.events.map((e) => e.contentId).join());
  assert.deepEqual(sends, ['h1,bad,h2,bad', 'h1,h2,bad', 'h1,h2']);
  assert.deepEqual(page.errors, ['waymark: 400 invalid_argument: events[1].action: "finished" is not an action of hint']);
  assert.deepEqual(page.stored(), []);
});

test('a refused batch that names no event is dropped whole', async () => {
  const page = open({
    answer: (req) => (req.path === '/v1/events' ? response(413, { message: 'Request Entity Too Large' }) : defaultAnswer(req)),
  });
  await ready(page);
  page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(DAY);
  assert.equal(page.requests.length, 2);
  assert.deepEqual(page.errors, ['waymark: 413 http_413']);
  assert.deepEqual(page.stored(), []);
});

for (const [status, code] of [[401, 'hmac_invalid'], [403, 'origin_not_allowed'], [404, 'unknown_workspace']]) {
  test(`${status} ${code} is reported once, never retried, and the events stay stored`, async () => {
    const page = open({ answer: () => response(status, { error: { code, message: 'no' } }) });
    const state = await ready(page);
    assert.equal(state, null, 'init resolves to no state');
    for (let i = 0; i < 3; i++) page.waymark.track('hint', 'h1', 'displayed');
    await page.advance(DAY);
    page.dispatch('online');
    page.dispatch('pagehide');
    await page.advance(DAY);
    assert.equal(page.requests.length, 1);
    assert.deepEqual(page.errors, [`waymark: ${status} ${code}: no`]);
    assert.equal(JSON.parse(page.stored()[0][1]).length, 3);
  });
}

test('a profile the server refuses still leaves the state and the events working', async () => {
  const page = open({
    answer: (req) => (req.path === '/v1/identify'
      ? response(400, { error: { code: 'invalid_argument', message: 'user.props.plan: longer than 1024 bytes', field: 'user.props.plan' } })
      : defaultAnswer(req)),
  });
  const state = ready(page);
  await page.advance(0);
  assert.deepEqual(page.requests.map((r) => r.path), ['/v1/identify', '/v1/state']);
  assert.deepEqual(page.requests[1].body, { workspace: 'ws1', username: user.username });
  assert.deepEqual(plain(await state), {});
  page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(1000);
  assert.equal(page.requests.at(-1).path, '/v1/events');
  assert.equal(page.errors.length, 1);
});

test('pending events survive a reload and go after identify on the next load', async () => {
  const storage = new Map();
  const first = open({ storage, answer: (req) => (req.path === '/v1/events' ? offline() : defaultAnswer(req)) });
  await ready(first);
  for (let i = 0; i < 5; i++) first.waymark.track('hint', 'h1', 'displayed');
  await first.advance(300);
  const ids = JSON.parse(first.stored()[0][1]).map((e) => e.id);
  assert.equal(ids.length, 5);
  assert.equal(first.stored()[0][0], 'waymark:ws1:' + user.username);

  const second = open({ storage });
  await ready(second);
  assert.deepEqual(second.requests.map((r) => r.path), ['/v1/identify', '/v1/events']);
  assert.deepEqual(second.requests[1].body.events.map((e) => e.id), ids, 'the same events, the same ids');
  assert.deepEqual(second.stored(), []);
});

test('offline: nothing is attempted until the browser is online again', async () => {
  const page = open();
  page.window.navigator.onLine = false;
  page.waymark.init('ws1', { endpoint: EU, user });
  for (let i = 0; i < 5; i++) page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(DAY);
  assert.equal(page.requests.length, 0);
  page.window.navigator.onLine = true;
  page.dispatch('online');
  await page.advance(0);
  assert.deepEqual(page.requests.map((r) => r.path), ['/v1/identify', '/v1/events']);
  assert.equal(page.requests[1].body.events.length, 5);
});

test('coming online cuts a long backoff short', async () => {
  let down = true;
  const page = open({ answer: (req) => (down ? offline() : defaultAnswer(req)) });
  page.waymark.init('ws1', { endpoint: EU, user });
  await page.advance(10 * 60000);
  const tries = page.requests.length;
  down = false;
  page.dispatch('online');
  await page.advance(0);
  assert.equal(page.requests.length, tries + 1);
  assert.deepEqual(plain(page.waymark.state()), {});
});

test('pagehide sends the pending events with keepalive, and an answer acknowledges them', async () => {
  const page = open();
  await ready(page);
  page.waymark.track('tour', 'welcome', 'finished');
  page.dispatch('pagehide');
  await page.advance(0);
  const req = page.requests[1];
  assert.equal(req.init.keepalive, true);
  assert.equal(req.body.events[0].action, 'finished');
  assert.deepEqual(page.stored(), []);
  page.dispatch('pagehide');
  await page.advance(DAY);
  assert.equal(page.requests.length, 2, 'nothing pending, nothing sent');
});

test('another tab acknowledging its events keeps the events this tab added meanwhile', async () => {
  const storage = new Map();
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const a = open({ storage });
  await ready(a);
  const b = open({ storage });
  await ready(b);
  a.waymark.track('hint', 'from-a', 'displayed');
  // Hold a's request while b adds an event.
  // a's request is held while b adds an event; a's later requests fail,
  // so that what a acknowledged is all that leaves the storage.
  const fetchA = a.window.fetch;
  let calls = 0;
  a.window.fetch = async (...args) => {
    if (calls++) offline();
    await held;
    return fetchA(...args);
  };
  await a.advance(250);
  b.waymark.track('hint', 'from-b', 'displayed');
  release();
  await a.advance(0);
  const left = JSON.parse(storage.get('waymark:ws1:' + user.username)).map((e) => e.contentId);
  assert.deepEqual(left, ['from-b']);
});

test('a new init (another user) keeps each user\'s events under their own name', async () => {
  const storage = new Map();
  const page = open({ storage, answer: (req) => (req.path === '/v1/events' ? offline() : defaultAnswer(req)) });
  await ready(page);
  page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(300);
  page.waymark.init('ws1', { endpoint: EU, user: { username: 'grace' } });
  page.waymark.track('hint', 'h2', 'displayed');
  await page.advance(300);
  const keys = page.stored().map(([k, v]) => k + '=' + JSON.parse(v).map((e) => e.contentId));
  assert.deepEqual(keys.sort(), ['waymark:ws1:ada@example.com=h1', 'waymark:ws1:grace=h2']);
});

test('without localStorage the queue lives in memory', async () => {
  const page = open();
  const broken = () => { throw new Error('SecurityError'); };
  page.window.localStorage = { getItem: broken, setItem: broken, removeItem: broken };
  await ready(page);
  page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(300);
  assert.equal(page.requests.at(-1).body.events.length, 1);
  assert.equal(page.errors.length, 0);
});

test('a full storage hands the queue to memory without losing an event', async () => {
  const page = open({ answer: (req) => (req.path === '/v1/events' ? offline() : defaultAnswer(req)) });
  await ready(page);
  page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(300);
  page.window.localStorage.setItem = () => { throw new Error('QuotaExceededError'); };
  page.waymark.track('hint', 'h2', 'displayed');
  page.answer = defaultAnswer;
  await page.advance(60000);
  const sent = page.requests.filter((r) => r.path === '/v1/events').at(-1).body.events.map((e) => e.contentId);
  assert.deepEqual(sent, ['h1', 'h2']);
});

test('feedback carries the page environment, within the API limits, and is not retried', async () => {
  let fail = false;
  const page = open({ answer: (req) => (fail ? offline() : defaultAnswer(req)) });
  await ready(page);
  page.window.location.href = 'https://app.example.com/' + 'x'.repeat(3000);
  page.window.navigator.userAgentData = { platform: 'Linux' };
  const out = await page.waymark.feedback({ text: 'Where is export?', rating: 4, category: 'question' });
  assert.deepEqual(plain(out), { id: 'f1', createdAt: '2026-01-02T03:04:05Z' });
  const req = page.requests.at(-1);
  assert.equal(req.path, '/v1/feedback');
  assert.equal(req.body.text, 'Where is export?');
  assert.equal(req.body.rating, 4);
  assert.equal(req.body.username, user.username);
  const env = req.body.environment;
  assert.equal(env.url.length, 2048);
  assert.deepEqual({ ...env, url: undefined }, {
    url: undefined, userAgent: 'Mozilla/5.0 (X11) TestAgent', language: 'en-GB', platform: 'Linux', viewportWidth: 1280, viewportHeight: 720,
  });

  fail = true;
  await assert.rejects(page.waymark.feedback({ text: 'again' }), /Failed to fetch/);
  await page.advance(DAY);
  assert.equal(page.requests.filter((r) => r.path === '/v1/feedback').length, 2);
});

test('feedback uploads its attachments through the presigned forms, then names them', async () => {
  const page = open();
  await ready(page);
  const shot = new Blob([new Uint8Array(1001)], { type: 'image/png' });
  const photo = new Blob([new Uint8Array(2002)], { type: 'image/jpeg' });
  await page.waymark.feedback({ text: 'See the screenshot', attachments: [shot, photo] });
  const asked = page.requests.filter((r) => r.path === '/v1/feedback/attachments').map((r) => [r.body.contentType, r.body.size, r.body.username]);
  assert.deepEqual(asked, [['image/png', 1001, user.username], ['image/jpeg', 2002, user.username]]);
  const uploads = page.requests.filter((r) => r.url.startsWith('https://bucket.example.com/'));
  assert.equal(uploads.length, 2);
  for (const u of uploads) {
    const form = u.body;
    // S3 reads the policy fields first: the file must be the last field.
    assert.deepEqual([...form.keys()], ['key', 'Content-Type', 'policy', 'file']);
    assert.equal(u.init.credentials, 'omit');
  }
  const sent = page.requests.at(-1);
  assert.equal(sent.path, '/v1/feedback');
  assert.deepEqual(sent.body.attachments, ['a'.repeat(31) + '1', 'a'.repeat(31) + '2']);
});

test('a refused attachment rejects the feedback, which is not sent', async () => {
  const page = open({
    answer: (req) => (req.path === '/v1/feedback/attachments'
      ? response(400, { error: { code: 'invalid_argument', message: 'contentType: must be one of', field: 'contentType' } })
      : defaultAnswer(req)),
  });
  await ready(page);
  await assert.rejects(page.waymark.feedback({ text: 'x', attachments: [new Blob(['<svg/>'], { type: 'image/svg+xml' })] }),
    (e) => e.status === 400 && e.code === 'invalid_argument');
  assert.equal(page.requests.filter((r) => r.path === '/v1/feedback').length, 0);
});

test('refused feedback rejects with the server\'s code, reported once', async () => {
  const page = open({
    answer: (req) => (req.path === '/v1/feedback'
      ? response(400, { error: { code: 'invalid_argument', message: 'text: required', field: 'text' } })
      : defaultAnswer(req)),
  });
  await ready(page);
  for (let i = 0; i < 2; i++) {
    await assert.rejects(page.waymark.feedback({}), (e) => e.status === 400 && e.code === 'invalid_argument');
  }
  assert.equal(page.errors.length, 1);
  await assert.rejects(open().waymark.feedback({ text: 'x' }), /init first/);
});

test('a listener added after the state arrived hears it at once; a failing one harms no other', async () => {
  const page = open();
  await ready(page);
  const heard = [];
  page.waymark.on('state', () => { throw new Error('listener bug'); });
  page.waymark.on('state', (s) => heard.push(plain(s)));
  page.waymark.on('other', () => heard.push('other'));
  page.waymark.track('hint', 'h1', 'displayed');
  await page.advance(300);
  assert.deepEqual(heard, [{}, { hints: { h1: { displayed: 1 } } }]);
  assert.equal(page.errors.length, 2, 'the failing listener, on adding and on the new state');
});

test('event ids come from getRandomValues where randomUUID is missing (plain http)', async () => {
  const page = open({ crypto: { getRandomValues: (a) => globalThis.crypto.getRandomValues(a) } });
  const id = page.waymark.track('hint', 'h1', 'displayed');
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('a second copy of the file leaves the first in charge', async () => {
  const page = open();
  const first = page.waymark;
  const { readFileSync } = await import('node:fs');
  const vm = await import('node:vm');
  vm.runInContext(readFileSync(new URL('../../waymark.js', import.meta.url), 'utf8'), page.window);
  assert.equal(page.window.waymark, first);
});

test('an init replaced before its answer resolves to no state; the new caller goes on', async () => {
  const page = open();
  const first = page.waymark.init('ws1', { endpoint: EU, user });
  const second = page.waymark.init('ws1', { endpoint: EU, user: { username: 'grace' } });
  assert.equal(await first, null);
  await page.advance(0);
  assert.deepEqual(plain(await second), {});
  assert.deepEqual(page.requests.map((r) => r.body.user.username), ['grace']);
});

test('prop keys the workspace does not store are reported once per key and page', async () => {
  const ignored = [['company'], ['company', 'notes'], undefined];
  const page = open({
    answer: (req) => req.path === '/v1/identify'
      ? response(200, { user: { firstSeenAt: 'x', lastSeenAt: 'y' }, state: {}, ignored: ignored.shift() })
      : defaultAnswer(req),
  });
  await ready(page);
  await ready(page, { user: { username: 'grace@example.com' } });
  await ready(page);
  assert.equal(page.requests.filter((r) => r.path === '/v1/identify').length, 3);
  assert.deepEqual(page.warnings, [
    'waymark: ignored company',
    'waymark: ignored notes',
  ]);
  assert.deepEqual(page.errors, [], 'an ignored key is no error');
});
