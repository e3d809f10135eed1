// A window for waymark.js inside node: the real file runs in a vm context
// whose timers, network, storage and connectivity the test controls.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { webcrypto } from 'node:crypto';

const source = readFileSync(new URL('../../waymark.js', import.meta.url), 'utf8');

// Lets every pending promise callback run (the fake fetch answers at once).
export const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

export function response(status, body, headers = {}) {
  return { status, body, headers };
}

// open loads waymark.js into a new window. storage is shared between
// windows to model a reload or a second tab; answer(request) decides each
// response: an object from response(), or a thrown error for a network
// failure. stub, when given, is the installation's window.waymark.
export function open({ storage = new Map(), answer = defaultAnswer, stub, crypto = webcrypto } = {}) {
  const timers = new Map();
  let now = 0;
  let nextTimer = 1;
  const listeners = {};
  const page = {
    requests: [],
    errors: [],
    warnings: [],
    delays: [], // every delay the snippet asked setTimeout for
    storage,
    answer,
    // advance runs the timers due within ms, in order, letting the work
    // each one starts finish before the next.
    async advance(ms) {
      const until = now + ms;
      for (;;) {
        await settle();
        const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = until;
      await settle();
    },
    pendingTimers: () => timers.size,
    dispatch(type) {
      for (const fn of listeners[type] || []) fn({ type });
    },
    stored() {
      return [...storage.entries()].filter(([k]) => k.startsWith('waymark:'));
    },
  };
  const win = {
    console: { error: (...args) => page.errors.push(args.join(' ')), warn: (...args) => page.warnings.push(args.join(' ')) },
    localStorage: {
      getItem: (k) => (storage.has(k) ? storage.get(k) : null),
      setItem: (k, v) => storage.set(k, String(v)),
      removeItem: (k) => storage.delete(k),
    },
    setTimeout: (fn, ms = 0) => {
      page.delays.push(ms);
      const id = nextTimer++;
      timers.set(id, { fn, at: now + ms });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    navigator: { onLine: true, userAgent: 'Mozilla/5.0 (X11) TestAgent', language: 'en-GB', platform: 'Linux x86_64' },
    location: { href: 'https://app.example.com/reports?tab=2' },
    innerWidth: 1280,
    innerHeight: 720,
    crypto,
    FormData,
    addEventListener: (type, fn) => (listeners[type] ||= []).push(fn),
    fetch: async (url, init) => {
      // An attachment's upload is a form, every other call JSON.
      const body = typeof init.body === 'string' ? JSON.parse(init.body) : init.body;
      const req = { url, init, body, path: new URL(url).pathname };
      page.requests.push(req);
      const r = page.answer(req);
      const headers = new Map(Object.entries(r.headers || {}));
      return {
        status: r.status,
        ok: r.status >= 200 && r.status < 300,
        headers: { get: (n) => headers.get(n.toLowerCase()) ?? null },
        json: async () => {
          if (r.body === undefined) throw new SyntaxError('no JSON');
          return r.body;
        },
      };
    },
  };
  win.window = win;
  if (stub) win.waymark = stub;
  vm.createContext(win);
  vm.runInContext(source, win, { filename: 'waymark.js' });
  page.window = win;
  page.waymark = win.waymark;
  return page;
}

// defaultAnswer plays a healthy server: a state echoing the hint counts.
export function defaultAnswer(req) {
  if (req.path === '/v1/feedback') return response(201, { id: 'f1', createdAt: '2026-01-02T03:04:05Z' });
  if (req.path === '/v1/feedback/attachments') {
    const id = 'a'.repeat(31) + req.body.size % 10;
    return response(201, { id, upload: { method: 'POST', url: 'https://bucket.example.com/', fields: { key: 'uploads/' + id, 'Content-Type': req.body.contentType, policy: 'p' } }, expiresAt: 'x' });
  }
  if (req.url.startsWith('https://bucket.example.com/')) return response(204);
  if (req.path === '/v1/events') {
    return response(200, { accepted: req.body.events.length, duplicates: 0, state: { hints: { h1: { displayed: 1 } } } });
  }
  if (req.path === '/v1/identify') return response(200, { user: { firstSeenAt: 'x', lastSeenAt: 'y' }, state: {} });
  return response(200, { state: {} });
}

export const offline = () => {
  throw new TypeError('Failed to fetch');
};
