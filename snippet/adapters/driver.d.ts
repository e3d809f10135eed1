import type { Driver } from 'driver.js';

/**
 * Records a driver.js tour (started, advanced with the step's index,
 * finished when it ends on its last step, skipped when it ends earlier)
 * through the driver's onHighlighted and onDestroyed hooks, calling the
 * ones it had. Returns start(): shows the tour unless the user finished or
 * skipped it, at the step reached; resolves with whether it was shown.
 */
export function bindDriver(driverObj: Driver, tourId: string): () => Promise<boolean>;
