// dist/eventline.js: the file a site embeds with <script type="module" src=".../eventline.js">.
//
// The loader snippet (snippet.js) defines `window.eventline` as a stub that records each call as
// [Date.now(), arguments] in `eventline.q`. Once the WebAssembly core is loaded this file replays
// those calls in order — `track` and `page` with their recorded time — and then replaces the stub with a live
// dispatcher of the same shape, which also exposes the tracker as `eventline.tracker`.
// A failing call (a hyphenated context key, bad options…) is reported on console.error with its
// code and never stops the calls after it.
// The words for error codes are not in this file: the first error or rejection that needs them
// imports dist/messages.js from beside it (npm/scripts/build.mjs keeps that import), and the
// report waits for it, so a page without errors never downloads them.
import { reword, setMessages, Tracker, worded } from './tracker.js';
import { loadWasm } from './web.js';

setMessages(undefined, () => import('./messages.js'));

const root = globalThis;

let tracker;
// Calls made before `init`: kept (with their time) until a tracker exists.
let waiting = [];

function report(command, error) {
  worded().then(() => {
    reword(error);
    console.error(`eventline('${command}'): ${(error && error.code) || 'error'}: ${error && error.message}`, error);
  });
}

function run(at, args) {
  const [command, a, b] = args;
  try {
    if (command === 'init') {
      if (tracker) throw Object.assign(new Error('already initialised'), { code: 'already_initialized' });
      tracker = new Tracker(a);
      live.tracker = tracker;
      const earlier = waiting;
      waiting = [];
      for (const [time, call] of earlier) run(time, call);
      return undefined;
    }
    if (!tracker) {
      waiting.push([at, args]);
      return undefined;
    }
    switch (command) {
      case 'track':
        return tracker.trackAt(a, b, at);
      case 'page':
        return tracker.pageAt(a, at);
      case 'identify':
        return tracker.identify(a);
      case 'reset':
        return tracker.reset();
      case 'optOut':
        return tracker.optOut();
      case 'optIn':
        return tracker.optIn();
      case 'flush':
        return tracker.flush().catch((error) => report(command, error));
      default:
        throw Object.assign(new Error(`unknown command ${String(command)}`), { code: 'unknown_command' });
    }
  } catch (error) {
    report(command, error);
    return undefined;
  }
}

/** The live `eventline(command, ...args)`: never throws; returns what the tracker method returns. */
function live(...args) {
  return run(Date.now(), args);
}

loadWasm().then(
  () => {
    const stub = root.eventline;
    const queued = (stub && stub.q) || [];
    root.eventline = live;
    for (const entry of queued) {
      const [at, args] = entry;
      run(typeof at === 'number' ? at : Date.now(), Array.from(args || []));
    }
  },
  (error) => {
    // The stub stays in place and keeps queueing; nothing is sent. Usually a CSP without
    // 'wasm-unsafe-eval', or the .wasm not served beside eventline.js.
    console.error('eventline: the WebAssembly core did not load', error);
  },
);
