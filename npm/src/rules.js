// GENERATED from event-model by tracker-wasm/tests/npm_rules.rs: do not edit. After changing
// the rules or their words: EVENTLINE_BLESS=1 cargo test -p eventline-tracker --test npm_rules
//
// The limits the wrapper applies itself (event_model::limits); CODES: the codes the
// tracker reports by their number (ErrorCode as u8, what the core answers); MESSAGES: their
// words, the collector's (Violation::message) with \x01 for the field (a context key
// without `context.`) and \x02 for that key with '_' for '-' (src/messages.js adds the
// wrapper's own; the embed fetches them only when an error needs words).
export const MAX_CONTEXT_KEYS = 100;
export const MAX_CONTEXT_STRING_CHARS = 2048;
export const INVALID_NAME = 22;
export const INVALID_CONTEXT = 35;
export const CODES = {
  8: 'unknown_partner',
  15: 'event_too_large',
  22: 'invalid_name',
  23: 'name_too_long',
  24: 'invalid_source_code',
  31: 'invalid_id',
  32: 'invalid_timestamp',
  35: 'invalid_context',
  36: 'context_key_hyphen',
  37: 'invalid_context_key',
  38: 'context_key_too_long',
  39: 'too_many_context_keys',
  40: 'invalid_context_value',
  41: 'context_value_too_long',
  42: 'context_number_out_of_range',
};
export const MESSAGES = {
  unknown_partner: '`\x01`: unknown_partner: not a UUID',
  event_too_large: 'the event is larger than 32768 bytes of JSON',
  invalid_name: '`\x01` must be non-empty, without control characters or leading/trailing spaces',
  name_too_long: '`\x01` is longer than 128 characters',
  invalid_source_code: '`\x01` must be 1-64 ASCII letters, digits, \'_\', \'.\' or \'-\', starting with a letter or digit',
  invalid_id: '`\x01` must be 1-128 characters without control characters or leading/trailing spaces',
  invalid_timestamp: '`\x01` must be an RFC 3339 timestamp such as 2026-11-25T10:00:00.000Z: the tracker takes a finite number of Unix milliseconds',
  invalid_context: '`\x01` must be a flat JSON object',
  context_key_hyphen: 'context key `\x01` contains a hyphen; keys are used as $field_code and {{client.eventContext.field_code}}, so use letters, digits and underscores (e.g. `\x02`)',
  invalid_context_key: 'context key `\x01` must start with a letter or underscore and contain only ASCII letters, digits and underscores',
  context_key_too_long: 'context key `\x01` is longer than 64 characters',
  too_many_context_keys: '`\x01` has more than 100 keys',
  invalid_context_value: 'context value `\x01` must be a string, number or boolean (not null, array or object)',
  context_value_too_long: 'context value `\x01` is longer than 2048 characters',
  context_number_out_of_range: 'context value `\x01` is not a finite number within \u{b1}2^53; send large ids as strings',
};
