/* Waymark browser snippet: sends onboarding events and reads the user's
 * onboarding state. No dependencies, no build step; see the README. */
((w) => {
  'use strict';
  // No window: imported during server-side rendering.
  if (!w) return;
  const stub = w.waymark || {};
  // A second copy on the page leaves the first in charge of the queue.
  if (stub.version) return;

  const BATCH = 25; // the API's limit per request
  const DELAY = 250; // ms: calls made together share a request
  const KEEP = 1000; // a user offline for good must not fill the storage
  const endpoints = stub.e || {};
  const listeners = [];
  const waiting = []; // once() calls made before the first state
  const reported = {};
  const memory = {};
  let early = []; // tracked before init
  let cfg = null;
  let state = null;
  let timer = 0;
  let sending = false;
  let attempt = 0;

  const error = (r) => r.body?.error || {};
  // Once per error code: a broken installation would repeat it per event.
  const report = (r) => {
    const e = error(r);
    const code = e.code || 'http_' + r.status;
    if (reported[code]) return;
    reported[code] = 1;
    w.console.error('waymark: ' + r.status + ' ' + code + (e.message ? ': ' + e.message : ''));
  };

  // Pending events stay in localStorage, per caller, until acknowledged: a
  // reload or a closed tab loses nothing. Where storage fails (disabled,
  // private mode, full), memory takes over; a copy left in storage is sent
  // again later, and counted once.
  let volatile = false;
  const key = () => 'waymark:' + cfg.workspace + ':' + cfg.user.username;
  const load = () => {
    if (!volatile) {
      try {
        return JSON.parse(w.localStorage.getItem(key())) || [];
      } catch { volatile = true; }
    }
    return memory[key()] || [];
  };
  const save = (list) => {
    memory[key()] = list;
    if (volatile) return;
    try {
      if (list.length) w.localStorage.setItem(key(), JSON.stringify(list));
      else w.localStorage.removeItem(key());
    } catch { volatile = true; }
  };
  // Read, change and write in one task, so that another tab of the same
  // user doing the same never overwrites an event it has not seen.
  const add = (events) => save(load().concat(events).slice(-KEEP));
  const drop = (batch) => {
    const ids = batch.map((e) => e.id);
    save(load().filter((e) => !ids.includes(e.id)));
  };

  // randomUUID exists only in secure contexts; plain http gets the same
  // version 4 layout from getRandomValues.
  const uuid = () => w.crypto.randomUUID?.() ||
    Array.from(w.crypto.getRandomValues(new Uint8Array(16)), (b, i) =>
      (i === 6 ? (b & 15) | 64 : i === 8 ? (b & 63) | 128 : b).toString(16).padStart(2, '0') +
      ([3, 5, 7, 9].includes(i) ? '-' : '')).join('');

  const caller = (c) => ({ workspace: c.workspace, username: c.user.username, hmac: c.hmac });

  // A string body goes as text/plain, a CORS-safelisted type: no
  // preflight, one request per call. No cookies: the body says who calls.
  const post = (c, path, body, keepalive) => w.fetch(c.endpoint + path, {
    method: 'POST', body: JSON.stringify(body), credentials: 'omit', keepalive,
  }).then((r) => r.json().catch(() => null).then((json) =>
    ({ status: r.status, retryAfter: r.headers.get('retry-after'), body: json })));
  const ok = (r) => r.status >= 200 && r.status < 300;

  // A failing listener must not keep the state from the others.
  const tell = (fn) => {
    try { fn(state); } catch (e) { w.console.error(e); }
  };
  const setState = (s) => {
    if (!s) return;
    state = s;
    listeners.concat(waiting.splice(0)).forEach(tell);
  };

  const wake = (ms) => {
    w.clearTimeout(timer);
    timer = w.setTimeout(pump, ms);
  };

  // pump takes the caller's next step, one request at a time: identify (or
  // read the state if the profile was refused), then the pending events,
  // oldest first.
  const pump = async () => {
    timer = 0;
    const c = cfg;
    // Offline for sure: the 'online' event starts it again.
    if (!c || sending || c.halted || w.navigator.onLine === false) return;
    let path = '/v1/events';
    let body = caller(c);
    let batch = [];
    if (!c.identified) {
      path = '/v1/identify';
      body = { workspace: c.workspace, user: c.user, hmac: c.hmac };
    } else if (c.stateless) {
      path = '/v1/state';
    } else {
      batch = load().slice(0, BATCH);
      if (!batch.length) return;
      body.events = batch;
    }
    sending = true;
    const r = await post(c, path, body).catch(() => ({ status: 0 }));
    sending = false;
    // init was called again meanwhile: this answer is another caller's.
    if (c !== cfg) return pump();
    const s = r.status;
    if (ok(r)) {
      attempt = 0;
      c.identified = true;
      c.stateless = false;
      drop(batch);
      r.body?.ignored?.forEach((k) => reported[k = 'waymark: ignored ' + k] ||= (w.console.warn(k), 1));
      setState(r.body?.state);
      c.done(state);
    } else if (!s || s === 429 || s >= 500) {
      // Worth another try, with the same event ids (counted once). The
      // delay doubles up to a minute, half of it random so that clients
      // cut off together come back apart, and honours Retry-After.
      const span = Math.min(60000, 1000 * 2 ** attempt++);
      return wake(Math.max(span / 2 + Math.random() * span / 2, Number(r.retryAfter) * 1000 || 0));
    } else {
      report(r);
      if (s === 401 || s === 403 || s === 404) {
        // Identity, origin or workspace refused: so would every call be.
        // The events stay stored for an init that gets it right.
        c.halted = true;
        return c.done(null);
      }
      if (batch.length) {
        // A refused batch would be refused again. The server names the
        // first bad event: only it goes, or all if none is named.
        const bad = batch[/^events\[(\d+)\]/.exec(error(r).field)?.[1]];
        drop(bad ? [bad] : batch);
      } else {
        // The profile broke a limit; the state and events do not need it.
        c.identified = true;
        c.stateless = path !== '/v1/state';
        if (!c.stateless) c.done(null);
      }
    }
    pump();
  };

  const init = (workspace, opts = {}) => {
    const user = opts.user || {};
    const region = opts.region || 'eu';
    const endpoint = (opts.endpoint || endpoints[region] || '').replace(/\/+$/, '');
    if (!workspace || !user.username || !endpoint) {
      w.console.error('waymark: init needs a workspace, user.username and an endpoint for region ' + region);
      return Promise.resolve(null);
    }
    attempt = 0;
    state = null;
    cfg?.done(null); // a caller replaced before its answer came
    const ready = new Promise((done) => {
      cfg = { workspace, user, hmac: opts.hmac, endpoint, done };
    });
    add(early);
    early = [];
    wake(0);
    return ready;
  };

  const track = (content, contentId, action, extra = {}) => {
    const ev = { id: uuid(), content, contentId, action, at: new Date().toISOString() };
    for (const k of ['step', 'item', 'answer']) if (extra[k] != null) ev[k] = extra[k];
    if (!cfg) {
      early.push(ev);
    } else {
      add([ev]);
      // A full batch goes at once, else after the calls that follow; a
      // pending retry keeps its delay.
      const full = load().length >= BATCH;
      if (!timer || (full && !attempt)) wake(full ? 0 : DELAY);
    }
    return ev.id;
  };

  const refused = (r, what) => {
    report(r);
    const code = error(r).code || 'http_' + r.status;
    return Object.assign(new Error('waymark: ' + what + ' refused: ' + code), { status: r.status, code });
  };

  // An attachment (an image File or Blob) goes straight to the bucket, as
  // the form the server presigned for its type and size; S3 refuses any
  // other file. Resolves with its id.
  const upload = (c, file) => post(c, '/v1/feedback/attachments', { ...caller(c), contentType: file.type, size: file.size })
    .then((r) => {
      if (!ok(r)) throw refused(r, 'attachment');
      const { upload: u, id } = r.body;
      const form = new w.FormData();
      for (const k in u.fields) form.append(k, u.fields[k]);
      form.append('file', file);
      return w.fetch(u.url, { method: 'POST', body: form, credentials: 'omit' }).then((s) => {
        if (s.ok) return id;
        throw refused({ status: s.status }, 'attachment upload');
      });
    });

  // Feedback carries no id the server could deduplicate by, so it is sent
  // once, not retried: the promise tells the widget whether it arrived. Its
  // attachments are uploaded first.
  const feedback = (fb = {}) => {
    const c = cfg;
    if (!c) return Promise.reject(new Error('waymark: call init first'));
    const n = w.navigator;
    const environment = {
      url: w.location.href.slice(0, 2048),
      userAgent: (n.userAgent || '').slice(0, 512),
      language: (n.language || '').slice(0, 35),
      platform: (n.userAgentData?.platform || n.platform || '').slice(0, 64),
      viewportWidth: w.innerWidth,
      viewportHeight: w.innerHeight,
    };
    return Promise.all((fb.attachments || []).map((f) => upload(c, f)))
      .then((attachments) => post(c, '/v1/feedback', { ...caller(c), text: fb.text, rating: fb.rating, category: fb.category, environment, attachments }))
      .then((r) => {
        if (ok(r)) return r.body;
        throw refused(r, 'feedback');
      });
  };

  // show(item) runs unless the state or an unsent event rules the content
  // out; the promise says whether it ran.
  const over = /^(finished|skipped|dismissed|answered|completed|read)$/;
  const once = (kind, id, show) => new Promise((resolve) => {
    const go = (s) => {
      const item = s[kind + 's']?.[id];
      const ruled = item && (over.test(item.status) || item.dismissed || item.read) ||
        load().some((e) => e.content === kind && e.contentId === id && over.test(e.action));
      resolve(!ruled);
      if (!ruled) show(item);
    };
    state ? tell(go) : waiting.push(go);
  });

  // A listener added late hears the current state at once.
  const on = (name, fn) => {
    if (name !== 'state') return;
    listeners.push(fn);
    if (state) tell(fn);
  };

  // Leaving the page (or entering the back-forward cache): keepalive lets
  // the pending events outlive it; a lost answer means one more sending on
  // the next load, counted once.
  w.addEventListener('pagehide', () => {
    const c = cfg;
    const batch = c && !c.halted ? load().slice(0, BATCH) : [];
    if (!batch.length) return;
    post(c, '/v1/events', { ...caller(c), events: batch }, true).then((r) => {
      if (c === cfg && ok(r)) {
        drop(batch);
        setState(r.body?.state);
      }
    }, () => { /* stays stored */ });
  });

  w.addEventListener('online', () => {
    attempt = 0;
    wake(0);
  });

  const api = { version: 1, e: endpoints, init, track, feedback, on, once, state: () => state };
  w.waymark = api;
  // Replay, in order, what the page asked of the installation's stub.
  for (const [method, args] of stub.q || []) api[method]?.(...args);
})(globalThis.window);
