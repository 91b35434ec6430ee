// Type-checked in the consumer folder against the installed tarball (exports "types"/"import").
import { createTracker, type Tracker, type TrackerError } from '@eventline/tracker';
import type { EventlineGlobal } from '@eventline/tracker/embed';

export async function esm(): Promise<string> {
  const tracker: Tracker = await createTracker({ collectorUrl: 'http://x', partnerId: 'p', source: 's' });
  try {
    return tracker.track('a', { ok: 1 });
  } catch (e) {
    return (e as TrackerError).code;
  }
}
export const global: EventlineGlobal = window.eventline;
