// Entry for browsers and bundlers ("browser" / "import" conditions): the core is fetched from
// beside this file (src/web.js), and the words for error codes come with it.
import { creator } from './entry.js';
import { messages } from './messages.js';
import { setMessages } from './tracker.js';
import { loadWasm } from './web.js';

export { Tracker } from './tracker.js';
export { loadWasm };

setMessages(messages);

/**
 * `createTracker(options)` loads the core if needed (`loadWasm`), then builds a Tracker (rejects
 * with the Tracker's coded Error).
 */
export const createTracker = creator(loadWasm);
