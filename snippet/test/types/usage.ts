// How an app written in TypeScript uses the package, through its published
// names (the package resolves itself by name): `tsc -p test/types` must
// accept all of it.
import { feedback, init, on, once, state, track, type State } from '@waymarkhq/snippet';
import { bindDriver } from '@waymarkhq/snippet/driver';
import { bindShepherd } from '@waymarkhq/snippet/shepherd';
import { driver } from 'driver.js';
import Shepherd from 'shepherd.js';

const ready: Promise<State | null> = init('acme-prod', {
  endpoint: 'https://abc123.execute-api.eu-central-1.amazonaws.com',
  user: { username: 'user-42', email: 'ada@example.com', props: { plan: 'pro', seats: 3, tags: ['a', 'b'] } },
  hmac: { hash: 'ab12', expiration: 1767323045 },
});
ready.then((s) => s?.tours['welcome']?.status);

const id: string | undefined = track('tour', 'welcome', 'advanced', { step: 'card-2' });
track('checklist', 'setup', 'item_completed', { item: 'invite' });
track('survey', 'nps', 'answered', { answer: 9 });
on('state', (s) => s.hints['h1']?.dismissed);
const current: State | null = state();
feedback({ text: 'Great tour', rating: 5 }).then((r) => r.id);
feedback({ text: 'See the screenshot', attachments: [new Blob([], { type: 'image/png' })] });
once('tour', 'welcome', (tour) => tour?.step).then((shown: boolean) => shown);
once('hint', 'export', (hint) => hint?.displayed);

const tour = driver({ steps: [{ element: '#a', popover: { title: 'A' } }] });
const startDriver: () => Promise<boolean> = bindDriver(tour, 'driver-tour');
startDriver();

const shepherd = new Shepherd.Tour({ steps: [{ id: 'one', text: 'One' }] });
bindShepherd(shepherd, 'shepherd-tour')();

// window.waymark, for pages that load the script tag.
window.waymark.track('announcement', 'release', 'read');

export { current, id };
