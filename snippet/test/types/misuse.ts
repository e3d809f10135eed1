// Calls the declarations must refuse: each line is an error tsc reports
// (and @ts-expect-error turns into a failure if it does not).
import { init, once, track } from '@waymarkhq/snippet';

// @ts-expect-error an action of another kind
track('tour', 'welcome', 'dismissed');
// @ts-expect-error not a kind of content
track('banner', 'b1', 'displayed');
// @ts-expect-error init needs the user
init('acme-prod', {});
// @ts-expect-error a tour's state has no displayed count
once('tour', 'welcome', (tour) => tour?.displayed);
