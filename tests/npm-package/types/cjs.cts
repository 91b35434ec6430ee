// The require() side: resolves to dist/index.d.cts through exports "node"/"require".
import tracker = require('@eventline/tracker');

export async function cjs(): Promise<string | undefined> {
  const t = await tracker.createTracker({ collectorUrl: 'http://x', partnerId: 'p', source: 's', autoContext: false });
  return t.customerId;
}
