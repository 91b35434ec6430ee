// Types of @eventline/tracker. Hand-written: the wasm-bindgen output uses `Symbol.dispose`, which
// would force every consumer to add `esnext.disposable` to `lib` or to skip library checks.

/** A context value as the collector stores it. Integers must stay within ±2^53. */
export type ContextValue = string | number | boolean;

/**
 * An event's context: a flat object of at most 100 keys. A key starts with a letter or `_`, then
 * letters, digits and `_` only (never a hyphen), at most 64 characters. Strings ≤ 2048 characters.
 */
export type EventContext = Record<string, ContextValue>;

/** Which automatic context keys are added to every event (each defaults to on where available). */
export interface AutoContextOptions {
  /** `page_url`, `page_path` */
  url?: boolean;
  /** `page_referrer` */
  referrer?: boolean;
  /** `page_title` */
  title?: boolean;
  /** `screen_width`, `screen_height` */
  screen?: boolean;
  /** `language` */
  language?: boolean;
  /** `time_zone` */
  timeZone?: boolean;
  /** `utm_source`, `utm_medium`, `utm_campaign`, `utm_term`, `utm_content` from the page URL */
  utm?: boolean;
}

/** Synchronous key-value storage supplied by the host (default: localStorage, else memory). */
export interface TrackerStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** One request the tracker wants sent: POST `body` (JSON text) to `url`. */
export interface TransportRequest {
  url: string;
  body: string;
  /** True while the page is being hidden or unloaded: the request must outlive the page. */
  keepalive: boolean;
}

/** What the transport learned from the collector. */
export interface TransportResponse {
  /** HTTP status; 0 for a network error (retried). */
  status: number;
  /** The `Retry-After` header, if any (seconds). */
  retryAfter?: string | null;
  /** The response body, if read (the collector's per-event results). */
  body?: string;
}

/** Sends one request; resolve with the answer, reject (or status 0) on a network error. */
export type Transport = (request: TransportRequest) => Promise<TransportResponse>;

/** An event the collector refused for good (or the tracker had to drop); never retried. */
export interface Rejection {
  eventId: string;
  name: string;
  /**
   * The collector's error code (e.g. `unknown_source`), `http_<status>` for a refused request
   * without one, or `queue_overflow` for an event dropped because the queue was full.
   */
  code: ErrorCode;
  /** The offending field, e.g. `context.user-name`, when known. */
  field?: string | null;
  /**
   * The collector's words, else the tracker's. (dist/eventline.js fetches the tracker's words,
   * dist/messages.js, before its first report that needs them, so its reports may come a moment
   * later.)
   */
  message: string;
}

/**
 * Where the WebAssembly core comes from: a URL (in Node also a file path), a Response, bytes or a
 * compiled module. (`URL`, `Response` and `WebAssembly` come from lib "dom" or @types/node.)
 */
export type WasmSource = string | URL | Response | ArrayBuffer | ArrayBufferView | WebAssembly.Module;

export interface TrackerOptions {
  /** The collector's base URL, e.g. `https://collect.example.com` (without `/v1/events`). */
  collectorUrl: string;
  /** The partner's id (a UUID). */
  partnerId: string;
  /** A registered source code of the partner, e.g. `online_store`, `mobile_app`. */
  source: string;
  /** Events per request. Default 20. */
  batchSize?: number;
  /** Largest request body in bytes; keeps keepalive fetch and sendBeacon under 64 KiB. Default 60000. */
  maxBatchBytes?: number;
  /** How long a partial batch waits before it is sent, in ms. Default 1000. */
  flushIntervalMs?: number;
  /** Most events kept queued; the oldest are dropped (and reported) beyond it. Default 1000. */
  maxQueueEvents?: number;
  /** A session ends after this much inactivity, in ms. Default 1800000 (30 minutes). */
  sessionTimeoutMs?: number;
  /** Automatic context: `false` for none, or switch keys off one by one. Default: all on. */
  autoContext?: boolean | AutoContextOptions;
  /** Persistent storage for the queue and ids. Default: localStorage if present, else memory. */
  storage?: TrackerStorage;
  /** How requests are sent. Default: fetch (keepalive) and navigator.sendBeacon. */
  transport?: Transport;
  /** Prefix of the storage keys. Default `eventline`. */
  storagePrefix?: string;
  /** Called with events dropped for good (permanent rejections, queue overflow). */
  onRejected?: (rejections: Rejection[]) => void;
  /** Flush on visibilitychange / pagehide and resend on `online`, where a window exists. Default true. */
  lifecycle?: boolean;
}

/** Options of `createTracker`: the tracker's own, plus where to load the core from. */
export interface CreateTrackerOptions extends TrackerOptions {
  /**
   * The WebAssembly core. Default: `./wasm/eventline_tracker_bg.wasm` beside the package's entry
   * (fetched in browsers, read from disk in Node). Give it when a bundler does not emit the file
   * for you, e.g. `import wasm from '@eventline/tracker/wasm'` with esbuild's `--loader:.wasm=file`.
   */
  wasm?: WasmSource;
}

/** Codes of the collector's rule violations (README: "Error codes"), thrown the same way here. */
export type CollectorErrorCode =
  | 'invalid_json'
  | 'invalid_batch'
  | 'empty_batch'
  | 'too_many_events'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'unsupported_encoding'
  | 'invalid_gzip'
  | 'unknown_partner'
  | 'missing_api_key'
  | 'invalid_api_key'
  | 'storage_unavailable'
  | 'overloaded'
  | 'rate_limited'
  | 'body_timeout'
  | 'event_too_large'
  | 'invalid_event'
  | 'unknown_field'
  | 'missing_field'
  | 'invalid_field_type'
  | 'invalid_event_id'
  | 'invalid_kind'
  | 'invalid_name'
  | 'name_too_long'
  | 'invalid_source_code'
  | 'unknown_source'
  | 'source_disabled'
  | 'origin_not_allowed'
  | 'origin_required'
  | 'missing_identity'
  | 'identity_not_allowed'
  | 'invalid_id'
  | 'invalid_timestamp'
  | 'occurred_in_future'
  | 'occurred_too_long_ago'
  | 'invalid_context'
  | 'context_key_hyphen'
  | 'invalid_context_key'
  | 'context_key_too_long'
  | 'too_many_context_keys'
  | 'invalid_context_value'
  | 'context_value_too_long'
  | 'context_number_out_of_range'
  | 'property_type_mismatch'
  | 'missing_property'
  | 'undeclared_event';

/**
 * Codes only the tracker uses: `invalid_option` (a bad option; `field` names it),
 * `queue_overflow` (an event dropped from a full queue, in `onRejected`).
 */
export type TrackerOnlyErrorCode = 'invalid_option' | 'queue_overflow';

/** A collector code, one of the tracker's own, or `http_<status>` (see `Rejection.code`). */
export type ErrorCode = CollectorErrorCode | TrackerOnlyErrorCode | (string & {});

/** What `new Tracker`, `track`, `trackAt`, `page`, `pageAt` and `identify` throw on a rule violation. */
export interface TrackerError extends Error {
  /** Machine-readable, stable, e.g. `context_key_hyphen`. */
  code: ErrorCode;
  /** The offending field, e.g. `context.user-name`, when there is one. */
  field?: string | null;
}

/** The tracker. Build it with `createTracker`, which loads the WebAssembly core first. */
export declare class Tracker {
  /** Needs the core loaded (`loadWasm`); throws a TrackerError on bad options. */
  constructor(options: TrackerOptions);
  /**
   * Validates, stores and queues an event; returns its `event_id` (UUID v7), or `""` while opted
   * out. Throws a TrackerError on a rule violation, and queues nothing then.
   */
  track(name: string, context?: EventContext | null): string;
  /** Like `track`, with the time it happened (ms since the epoch). */
  trackAt(name: string, context: EventContext | null | undefined, occurredAtMs: number): string;
  /** Queues a `page_view` with `page_url`, `page_referrer` and `page_title`; returns its id. */
  page(context?: EventContext | null): string;
  /** Like `page`, with the time it happened (ms since the epoch). */
  pageAt(context: EventContext | null | undefined, occurredAtMs: number): string;
  /** Attaches a customer id (a string, or an integer) to later events. */
  identify(customerId: string | number): void;
  /** Forgets the customer; starts a new anonymous id and session (e.g. on logout). */
  reset(): void;
  /** Sends everything queued now. */
  flush(): Promise<void>;
  /** Stops tracking (persisted): clears the queue; nothing is stored or sent until `optIn`. */
  optOut(): void;
  /** Resumes tracking after `optOut`. */
  optIn(): void;
  readonly optedOut: boolean;
  /** Whether queued events survive a reload here (localStorage or a host storage). */
  readonly persistent: boolean;
  readonly anonymousId: string;
  readonly sessionId: string;
  readonly customerId: string | undefined;
  /**
   * Stops its timers and page hooks, releases its queue to the next tracker (which adopts it) and
   * the core's memory; do not use it afterwards.
   */
  free(): void;
}

/** Loads the core once (later calls share the first load); `createTracker` calls it for you. */
export declare function loadWasm(source?: WasmSource): Promise<void>;

/** Loads the core if needed and builds a tracker. Rejects with a TrackerError on bad options. */
export declare function createTracker(options: CreateTrackerOptions): Promise<Tracker>;

/** The calls of the loader snippet's `eventline(...)` (queued until eventline.js has loaded). */
export interface EventlineCommands {
  (command: 'init', options: TrackerOptions): void;
  (command: 'track', name: string, context?: EventContext): string | undefined;
  (command: 'page', context?: EventContext): string | undefined;
  (command: 'identify', customerId: string): void;
  (command: 'reset' | 'optOut' | 'optIn'): void;
  (command: 'flush'): Promise<void> | undefined;
}

/** `window.eventline`: the snippet's queue stub, replaced by a live dispatcher once loaded. */
export interface EventlineGlobal extends EventlineCommands {
  /** Calls recorded by the snippet before eventline.js loaded: [timestampMs, arguments]. */
  q?: Array<[number, IArguments]>;
  /**
   * The tracker, once eventline.js has loaded and `init` has run. Its thrown errors carry `code`
   * and `field`; their `message` names only those until a report has fetched the words
   * (dist/messages.js).
   */
  tracker?: Tracker;
}

declare global {
  /** Defined by the loader snippet / dist/eventline.js on pages that embed the tracker. */
  var eventline: EventlineGlobal;
}
