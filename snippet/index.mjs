// The Waymark snippet as an ES module, for bundled apps. It runs the same
// file the script tag loads (waymark.js, which installs window.waymark once
// per page: with both on a page, the first is in charge) and exports its
// calls. Without a window (server-side rendering) the calls do nothing.
import './waymark.js';

const api = () => globalThis.window?.waymark;

export const init = (workspace, options) => api()?.init(workspace, options) ?? Promise.resolve(null);
export const track = (content, contentId, action, extra) => api()?.track(content, contentId, action, extra);
export const feedback = (message) => api()?.feedback(message) ?? Promise.reject(new Error('waymark: no window'));
export const on = (name, listener) => api()?.on(name, listener);
export const once = (content, contentId, show) => api()?.once(content, contentId, show) ?? Promise.resolve(false);
export const state = () => api()?.state() ?? null;
