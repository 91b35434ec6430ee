// `@eventline/tracker/embed` (dist/eventline.js) exports nothing: loading it replays the loader
// snippet's queue and installs the global `eventline` dispatcher, typed in index.d.ts.
export type { EventlineGlobal, EventlineCommands } from './index.js';
