// Waymark for Shepherd tours: bindShepherd(tour, tourId) records the tour
// with Shepherd's own events and returns start(), which shows the tour only
// if the user has not finished or skipped it, resuming at the step reached.
// Steps are named by their Shepherd id: give each step an id that stays the
// same across releases of the tour.
import { once, track } from '../index.mjs';

export function bindShepherd(tour, tourId) {
  const record = (action, extra) => track('tour', tourId, action, extra);
  tour.on('start', () => record('started'));
  tour.on('show', ({ step }) => record('advanced', { step: step.id }));
  tour.on('complete', () => record('finished'));
  tour.on('cancel', () => record('skipped'));
  return () => once('tour', tourId, (state) => {
    // show() activates the tour at a step without start()'s first step.
    if (state?.step && tour.getById(state.step)) tour.show(state.step);
    else tour.start();
  });
}
