// The words for every code the tracker reports (code name -> message, with \x01 for the field
// and \x02 for a hyphenated key with '_' for '-'): event-model's (rules.js, generated) and the
// wrapper's own (its options and its queue cap; not wire rules, so not in event-model).
// The Node and bundler entries set them at once; the embed (dist/eventline.js) fetches them as
// dist/messages.js only when an error or rejection needs words, so a page without errors never
// loads them.
import { MESSAGES } from './rules.js';

export const messages = {
  ...MESSAGES,
  invalid_option: '`\x01`: missing or invalid option',
  queue_overflow: 'the queue held maxQueueEvents events; the oldest was dropped',
};
