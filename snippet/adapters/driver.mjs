// Waymark for driver.js tours: bindDriver(driverObj, tourId) records the
// tour with driver.js's own hooks and returns start(), which shows the tour
// only if the user has not finished or skipped it, resuming at the step
// reached. Steps are named by their index ("0", "1", ...).
import { once, track } from '../index.mjs';

export function bindDriver(driverObj, tourId) {
  const config = driverObj.getConfig();
  const record = (action, extra) => track('tour', tourId, action, extra);
  let started = false;
  driverObj.setConfig({
    ...config,
    onHighlighted(element, step, opts) {
      if (!started) record('started');
      started = true;
      record('advanced', { step: String(opts.state.activeIndex) });
      config.onHighlighted?.(element, step, opts);
    },
    // driver.js ends a tour the same way whether its last step was done or
    // closed: ended on the last step it is finished, before it skipped.
    onDestroyed(element, step, opts) {
      started = false;
      const last = opts.state.activeIndex === (opts.config.steps || []).length - 1;
      record(last ? 'finished' : 'skipped');
      config.onDestroyed?.(element, step, opts);
    },
  });
  return () => once('tour', tourId, (tour) => {
    const at = Number(tour?.step);
    driverObj.drive(at > 0 && at < (driverObj.getConfig().steps || []).length ? at : 0);
  });
}
