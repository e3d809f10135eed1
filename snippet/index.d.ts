// Types of the Waymark snippet's calls, for the ES module (index.mjs) and
// for window.waymark when the script tag loads waymark.js.

/** The kinds of onboarding content. */
export type Content = 'tour' | 'hint' | 'announcement' | 'checklist' | 'survey';

/** The actions of each kind. */
export interface Actions {
  tour: 'started' | 'advanced' | 'finished' | 'skipped';
  hint: 'displayed' | 'dismissed';
  announcement: 'displayed' | 'read';
  checklist: 'item_completed' | 'completed' | 'dismissed';
  survey: 'displayed' | 'answered' | 'dismissed';
}

export type Scalar = string | number | boolean | null;
export type PropValue = Scalar | Scalar[] | { [key: string]: PropValue };

/** The user information object; only username is required. */
export interface User {
  username: string;
  email?: string;
  firstname?: string;
  lastname?: string;
  role?: string;
  /** RFC 3339. */
  signUpAt?: string;
  /** Merged key by key; null deletes a key. */
  props?: Record<string, PropValue>;
}

export interface InitOptions {
  user: User;
  /** The region's endpoint given by the installation: 'eu' (default) or 'us'. */
  region?: 'eu' | 'us';
  /** The API's base URL, e.g. https://abc123.execute-api.eu-central-1.amazonaws.com. */
  endpoint?: string;
  /** Identity verification: hex(HMAC-SHA256(secret, username)), from your server. */
  hmac?: { hash: string; expiration?: number };
}

export interface TourState { status: 'not_finished' | 'finished' | 'skipped'; step?: string; updatedAt: string }
export interface HintState { displayed: number; dismissed: boolean; lastDisplayedAt?: string; updatedAt?: string }
export interface AnnouncementState { displayed: number; read: boolean; readAt?: string; lastDisplayedAt?: string; updatedAt?: string }
export interface ChecklistState { status: 'in_progress' | 'finished' | 'dismissed'; items: Record<string, 'done'>; updatedAt: string }
export interface SurveyState { status: 'displayed' | 'answered' | 'dismissed'; answeredAt?: string; updatedAt?: string }

/** The user's onboarding state: only content the user touched appears. */
export interface State {
  tours: Record<string, TourState>;
  hints: Record<string, HintState>;
  announcements: Record<string, AnnouncementState>;
  checklists: Record<string, ChecklistState>;
  surveys: Record<string, SurveyState>;
}

/** The state of one content item of a kind. */
export interface ItemState {
  tour: TourState;
  hint: HintState;
  announcement: AnnouncementState;
  checklist: ChecklistState;
  survey: SurveyState;
}

export interface Extra { step?: string; item?: string; answer?: Scalar | Scalar[] }

export interface Feedback {
  text: string;
  rating?: number;
  category?: string;
  /** Up to 3 images (PNG, JPEG or WebP, 5 MB each), uploaded before the feedback is sent. */
  attachments?: Blob[];
}

/** Identifies the user; resolves with the state, or null if refused. */
export function init(workspace: string, options: InitOptions): Promise<State | null>;
/** Records an event (sent in batches, kept until acknowledged); returns its id. */
export function track<K extends Content>(content: K, contentId: string, action: Actions[K], extra?: Extra): string | undefined;
/** Uploads the attachments, then sends feedback once; rejects with the server's code if refused. */
export function feedback(message: Feedback): Promise<{ id: string; createdAt: string }>;
/** Hears every new state, and the current one at once. */
export function on(name: 'state', listener: (state: State) => void): void;
/**
 * Runs show (given the item's state, e.g. a tour's step to resume at) only
 * when neither the user's state nor an unsent event says the content was
 * finished, skipped, dismissed, answered, completed or read. Waits for the
 * first state; resolves with whether show ran.
 */
export function once<K extends Content>(content: K, contentId: string, show: (item: ItemState[K] | undefined) => void): Promise<boolean>;
/** The last state received, or null. */
export function state(): State | null;

/** window.waymark, installed by waymark.js. */
export interface Waymark {
  version: number;
  init: typeof init;
  track: typeof track;
  feedback: typeof feedback;
  on: typeof on;
  once: typeof once;
  state: typeof state;
}

declare global {
  interface Window {
    waymark: Waymark;
  }
}
