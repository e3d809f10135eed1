import type { Tour } from 'shepherd.js';

/**
 * Records a Shepherd tour (started, advanced with the step's id, finished
 * on complete, skipped on cancel) through the tour's events. Returns
 * start(): shows the tour unless the user finished or skipped it, at the
 * step reached; resolves with whether it was shown.
 */
export function bindShepherd(tour: Tour, tourId: string): () => Promise<boolean>;
