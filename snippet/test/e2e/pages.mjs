// A customer's app for the end-to-end scenarios: a server on its own origin
// that serves this package's files (as a bundler would put them on a page)
// and the pinned driver.js and Shepherd builds, and pages made by the test.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';

const dir = new URL('../../', import.meta.url);
const served = /^\/(index\.mjs|waymark\.js|adapters\/[a-z]+\.mjs|node_modules\/(driver\.js|shepherd\.js)\/dist\/[\w./-]+\.(m?js|css))$/;
const types = { js: 'text/javascript', mjs: 'text/javascript', css: 'text/css', html: 'text/html' };

// startApp serves pages[path] (HTML text) and the package's files.
export async function startApp(pages = {}) {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://app').pathname;
    if (pages[path] !== undefined) return res.writeHead(200, { 'content-type': types.html }).end(pages[path]);
    if (!served.test(path) || path.includes('..')) return res.writeHead(404).end();
    try {
      const body = await readFile(new URL('.' + path, dir));
      res.writeHead(200, { 'content-type': types[path.split('.').pop()] }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    pages,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

// Signals the tests wait on instead of time: the snippet has nothing left
// to send (its queue in localStorage is empty), and the state it holds.
export const drained = (page) => page.waitForFunction(() => window.waymark?.version &&
  !Object.keys(localStorage).some((k) => k.startsWith('waymark:')));
export const tourState = (page, id, want) => page.waitForFunction(([id, want]) => {
  const t = window.waymark?.state()?.tours?.[id];
  return t && Object.entries(want).every(([k, v]) => t[k] === v);
}, [id, want]);
