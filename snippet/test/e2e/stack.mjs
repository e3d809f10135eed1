// The local stack and the browser of the end-to-end tests: a `waymark dev`
// of this checkout, started in a temporary state directory and always
// stopped, and the system's Chromium driven by playwright-core.
import { spawn, execFile } from 'node:child_process';
import { createServer, request } from 'node:http';
import { access, constants, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);

// Chromium from the Debian package. The flags keep it off the network it
// would otherwise reach for at every start (updates, sync, QUIC probes):
// on a closed network those attempts fail by the dozen.
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export async function launchBrowser() {
  try {
    await access(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium) or set CHROMIUM`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

// buildCLI compiles the waymark command once: a binary, not `go run`, so
// that the process the tests stop is the stack itself (go run would stand
// between them and not pass every signal on).
export async function buildCLI() {
  const dir = await mkdtemp(join(tmpdir(), 'waymark-e2e-bin-'));
  const bin = join(dir, 'waymark');
  await run('go', ['build', '-o', bin, './cmd/waymark'], { cwd: root });
  return { bin, dir };
}

// Stacks still running when the process exits (a crash, an interrupt) are
// killed with their engines, which die with their parent.
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

// startStack runs `waymark dev --port 0` (with --tls if asked) and returns
// its state file's contents and its request log.
export async function startStack(bin, { tls = false } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'waymark-e2e-'));
  const args = ['dev', '--port', '0', ...(tls ? ['--tls'] : [])];
  const child = spawn(bin, args, {
    cwd: root,
    env: { ...process.env, WAYMARK_STATE_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, for the kill of last resort
  });
  running.add(child);
  const output = [];
  const requests = []; // the API's access log, one object per request
  const logWaiters = new Set(); // see untilLogged
  let rest = '';
  child.stdout.on('data', (b) => output.push(b.toString()));
  child.stderr.on('data', (b) => {
    output.push(b.toString());
    const lines = (rest + b.toString()).split('\n');
    rest = lines.pop();
    for (const line of lines) {
      try {
        const entry = JSON.parse(line);
        if (entry.msg === 'request') requests.push(entry);
      } catch { /* not a log line */ }
    }
    for (const waiter of logWaiters) waiter();
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

  // untilLogged resolves once test() holds for the access log, checked at
  // every new line, or fails after a minute (or when the stack exits).
  const untilLogged = (what, test) => new Promise((resolve, reject) => {
    const check = () => {
      if (!test()) return;
      logWaiters.delete(check);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      logWaiters.delete(check);
      reject(new Error(`the access log never showed ${what}:\n${output.join('')}`));
    }, 60000);
    logWaiters.add(check);
    check();
  });

  const stack = {
    dir,
    requests,
    // served is what the gateway logged between two barriers: the
    // requests that reached it after the first and before the second.
    served: (from, to) => requests.filter((e) => e.seq > from && e.seq < to),
    // barrier sends a request of the test's own to the API and waits until
    // the access log holds it and every request that reached the API before
    // it (the gateway numbers requests as they arrive, in `seq`, and may log
    // them out of that order). It returns the barrier's seq: whatever
    // reached the API before the barrier request was sent is logged with a
    // lower one, and is in `requests` by now.
    async barrier() {
      if (!stack.state.api.startsWith('http:')) throw new Error('barrier: plain HTTP stacks only');
      const res = await fetch(new URL('/e2e-barrier', stack.state.api));
      await res.arrayBuffer();
      const id = res.headers.get('apigw-requestid');
      let seq = 0;
      await untilLogged(`the barrier ${id}`, () => {
        seq ||= requests.find((e) => e.requestId === id)?.seq || 0;
        return seq && requests.filter((e) => e.seq < seq).length === seq - 1;
      });
      return seq;
    },
    output: () => output.join(''),
    cli: async (...cliArgs) => {
      const { stdout } = await run(bin, ['--local', ...cliArgs], { env: { ...process.env, WAYMARK_STATE_DIR: dir } });
      return stdout;
    },
    async stop() {
      if (running.has(child)) {
        child.kill('SIGINT');
        const timeout = new Promise((resolve) => setTimeout(resolve, 15000, 'timeout'));
        if (await Promise.race([exited, timeout]) === 'timeout') process.kill(-child.pid, 'SIGKILL');
        running.delete(child);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + 180000;
  for (;;) {
    try {
      stack.state = JSON.parse(await readFile(join(dir, 'dev.json'), 'utf8'));
      return stack;
    } catch { /* not written yet */ }
    const gone = await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 100))]);
    if (gone || Date.now() > deadline) {
      await stack.stop();
      throw new Error(`waymark dev did not start (${JSON.stringify(gone)}):\n${stack.output()}`);
    }
  }
}

// startGate is a way to the stack that the test can cut, as a network
// outage would: while closed, every connection is dropped unanswered. Chromium's
// own offline emulation is not enough on its own: the keepalive request of
// a page being unloaded leaves through the browser process and gets past it
// (and past request interception).
export async function startGate(target) {
  const gate = { open: true, dropped: 0 };
  const server = createServer((req, res) => {
    if (!gate.open) {
      gate.dropped++;
      req.socket.destroy();
      return;
    }
    const upstream = request(new URL(req.url, target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  gate.url = `http://127.0.0.1:${server.address().port}`;
  gate.close = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  });
  return gate;
}
