// The demo app: what a customer's own page does with the snippet. It draws
// its onboarding content from the state Waymark returns and reports what
// the user does with it.
//
// The query string picks the caller: ?workspace=demo-verified&user=ada&hash=HEX
// &expiration=UNIX (what a customer's server would compute; see the README), and
// ?api=URL an API on another origin than the page's.
'use strict';

const params = new URLSearchParams(location.search);
const username = params.get('user') || 'ada@example.com';
const $ = (id) => document.getElementById(id);

waymark.init(params.get('workspace') || 'demo', {
  region: 'eu',
  user: { username, firstname: username.split('@')[0], role: 'admin', props: { plan: 'growth', seats: 5 } },
  hmac: params.get('hash')
    ? { hash: params.get('hash'), expiration: params.get('expiration') ? Number(params.get('expiration')) : undefined }
    : undefined,
});
$('user').textContent = username;

const TOUR = 'welcome';
const STEPS = [
  { id: 'card-1', target: 'dashboard', title: 'Welcome to Ledgerly', text: 'Your key numbers live here, updated every hour.' },
  { id: 'card-2', target: 'reports', title: 'Reports', text: 'Build a report once; we keep it up to date for you.' },
  { id: 'card-3', target: 'feedback', title: 'We are listening', text: 'Tell us what works and what does not, right from here.' },
];
const HINT = 'export-button';
const ANNOUNCEMENT = 'scheduled-reports';
const CHECKLIST = 'getting-started';
const ITEMS = ['create-report', 'invite-teammate'];

// Content is set up once, from the first state; later states only refresh
// the checklist and the state panel, so nothing jumps under the user.
let started = false;
let step = -1;
const done = new Set();

waymark.on('state', (state) => {
  $('state').textContent = JSON.stringify(state, null, 2);
  $('state-status').textContent = 'in sync';
  for (const [item, status] of Object.entries(state.checklists?.[CHECKLIST]?.items || {})) {
    if (status === 'done') done.add(item);
  }
  if (!started) {
    started = true;
    setUp(state);
  }
  drawChecklist(state.checklists?.[CHECKLIST]?.status);
});

function setUp(state) {
  const tour = state.tours?.[TOUR];
  if (!tour || tour.status === 'not_finished') {
    if (!tour) waymark.track('tour', TOUR, 'started');
    showStep(Math.max(0, STEPS.findIndex((s) => s.id === tour?.step)));
  }
  if (!state.hints?.[HINT]?.dismissed) $('hint-beacon').hidden = false;
  if (!state.announcements?.[ANNOUNCEMENT]?.read) {
    $('announcement').hidden = false;
    waymark.track('announcement', ANNOUNCEMENT, 'displayed');
  }
}

// The tour: a card that walks through three parts of the page.
function showStep(i) {
  document.querySelectorAll('.spotlight').forEach((el) => el.classList.remove('spotlight'));
  step = i;
  if (i < 0) {
    $('tour').hidden = true;
    return;
  }
  const s = STEPS[i];
  $(s.target).classList.add('spotlight');
  $('tour-title').textContent = s.title;
  $('tour-text').textContent = s.text;
  $('tour-steps').textContent = `Step ${i + 1} of ${STEPS.length}`;
  $('tour-next').textContent = i === STEPS.length - 1 ? 'Finish' : 'Next';
  $('tour').hidden = false;
}
$('tour-next').onclick = () => {
  if (step === STEPS.length - 1) {
    waymark.track('tour', TOUR, 'finished');
    showStep(-1);
    return;
  }
  waymark.track('tour', TOUR, 'advanced', { step: STEPS[step + 1].id });
  showStep(step + 1);
};
$('tour-skip').onclick = () => {
  waymark.track('tour', TOUR, 'skipped');
  showStep(-1);
};

// The hint: a beacon on the Export button that opens a tooltip.
$('hint-beacon').onclick = () => {
  $('hint').hidden = false;
  waymark.track('hint', HINT, 'displayed');
};
$('hint-dismiss').onclick = () => {
  $('hint').hidden = true;
  $('hint-beacon').hidden = true;
  waymark.track('hint', HINT, 'dismissed');
};

$('announcement-read').onclick = () => {
  $('announcement').hidden = true;
  waymark.track('announcement', ANNOUNCEMENT, 'read');
};

// The checklist: two things the app itself lets the user do.
function complete(item) {
  if (done.has(item)) return;
  done.add(item);
  waymark.track('checklist', CHECKLIST, 'item_completed', { item });
  if (ITEMS.every((i) => done.has(i))) waymark.track('checklist', CHECKLIST, 'completed');
  drawChecklist();
}
function drawChecklist(status) {
  const box = $('checklist');
  if (status === 'dismissed') {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  for (const li of box.querySelectorAll('li')) li.classList.toggle('done', done.has(li.dataset.item));
  $('checklist-bar').style.width = `${(100 * done.size) / ITEMS.length}%`;
  $('checklist-done').hidden = done.size < ITEMS.length;
}
$('create-report').onclick = () => {
  const row = document.createElement('tr');
  row.innerHTML = '<td>Untitled report</td><td></td><td>just now</td>';
  row.children[1].textContent = username.split('@')[0];
  $('report-rows').prepend(row);
  complete('create-report');
};
$('invite').onclick = () => complete('invite-teammate');
$('checklist-dismiss').onclick = () => {
  $('checklist').hidden = true;
  waymark.track('checklist', CHECKLIST, 'dismissed');
};

// Screenshots of this tab, taken with the user's consent where the browser
// offers screen capture (getDisplayMedia; Chromium suggests the current tab).
const captured = [];
if (navigator.mediaDevices?.getDisplayMedia) {
  $('feedback-capture').hidden = false;
  $('feedback-capture').onclick = async () => {
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, preferCurrentTab: true });
      const video = document.createElement('video');
      video.srcObject = stream;
      await video.play();
      const canvas = document.createElement('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext('2d').drawImage(video, 0, 0);
      stream.getTracks().forEach((t) => t.stop());
      const shot = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
      if (shot) captured.push(shot);
      $('feedback-captured').textContent = `${captured.length} capture(s) attached`;
    } catch {
      // The user declined to share the screen: nothing is attached.
    }
  };
}

// The feedback widget: feedback is sent once, so the form says how it went.
$('feedback-form').onsubmit = async (e) => {
  e.preventDefault();
  const rating = $('feedback-rating').value;
  const result = $('feedback-result');
  $('feedback-send').disabled = true;
  try {
    const sent = await waymark.feedback({
      text: $('feedback-text').value,
      rating: rating === '' ? undefined : Number(rating),
      category: $('feedback-category').value,
      attachments: [...$('feedback-files').files, ...captured].slice(0, 3),
    });
    result.textContent = `Thank you! Your feedback was received (${sent.id}).`;
    result.className = 'result ok';
    $('feedback-text').value = '';
    $('feedback-files').value = '';
    captured.length = 0;
    $('feedback-captured').textContent = '';
  } catch (err) {
    result.textContent = `Sorry, that did not reach us (${err.code || 'offline'}). Please try again.`;
    result.className = 'result error';
  } finally {
    $('feedback-send').disabled = false;
  }
};
