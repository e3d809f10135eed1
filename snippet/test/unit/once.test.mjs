// waymark.once: content is shown only when the user's state, and the events
// not yet acknowledged, do not rule it out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, response, offline } from './harness.mjs';

const EU = 'https://eu.api.example';
const user = { username: 'ada@example.com' };

const withState = (state) => (req) => response(200, { user: { firstSeenAt: 'x', lastSeenAt: 'y' }, state });

test('once waits for the state, then shows what it does not rule out, with its state', async () => {
  const page = open({
    answer: withState({
      tours: { done: { status: 'finished' }, left: { status: 'skipped' }, half: { status: 'not_finished', step: '2' } },
      hints: { gone: { displayed: 2, dismissed: true }, seen: { displayed: 2, dismissed: false } },
      announcements: { read: { displayed: 1, read: true } },
      checklists: { c: { status: 'dismissed' }, open: { status: 'in_progress', items: {} } },
      surveys: { s: { status: 'answered' } },
    }),
  });
  const shown = [];
  const asks = [
    ['tour', 'done'], ['tour', 'left'], ['tour', 'half'], ['tour', 'new'], ['hint', 'gone'], ['hint', 'seen'],
    ['announcement', 'read'], ['checklist', 'c'], ['checklist', 'open'], ['survey', 's'],
  ];
  // Asked before init, as a page's code may do.
  const results = asks.map(([kind, id]) => page.waymark.once(kind, id, (item) => shown.push([id, item?.step ?? null])));
  await page.advance(0);
  assert.deepEqual(shown, [], 'nothing before the state arrives');
  page.waymark.init('ws1', { endpoint: EU, user });
  await page.advance(0);
  assert.deepEqual(await Promise.all(results), [false, false, true, true, false, true, false, false, true, false]);
  assert.deepEqual(shown, [['half', '2'], ['new', null], ['seen', null], ['open', null]]);
  // Asked once the state is known: decided at once.
  assert.equal(await page.waymark.once('tour', 'done', () => assert.fail('shown')), false);
});

test('an event not yet sent rules the content out, across a reload while offline', async () => {
  const storage = new Map();
  const first = open({ storage, answer: withState({}) });
  first.waymark.init('ws1', { endpoint: EU, user });
  await first.advance(0);
  first.answer = offline;
  first.waymark.track('tour', 'welcome', 'skipped');
  await first.advance(1000);
  assert.equal(first.stored().length, 1, 'the event waits in storage');

  // The next page load: the server's state does not know of the skip yet.
  const second = open({ storage, answer: withState({ tours: { welcome: { status: 'not_finished', step: '1' } } }) });
  second.waymark.init('ws1', { endpoint: EU, user });
  const welcome = second.waymark.once('tour', 'welcome', () => assert.fail('shown again'));
  const other = second.waymark.once('tour', 'other', () => {});
  await second.advance(0);
  assert.equal(await welcome, false);
  assert.equal(await other, true);
});
