// What a shop page does with the package (bundled by Vite or esbuild in the test). The results go
// on window.result for the test to compare with what the server received.
export async function run(createTracker, extra = {}) {
  const tracker = await createTracker({
    collectorUrl: location.origin,
    partnerId: '0192f0c6-0000-7000-8000-000000000003',
    source: 'online_store',
    storagePrefix: `pkgtest_${document.title}`,
    ...extra,
  });
  const ids = [tracker.page(), tracker.track('product_viewed', { category: 'Jacket', price: 99.5, in_stock: true })];
  let hyphen = null;
  try {
    tracker.track('bad_event', { 'user-name': 'x' });
  } catch (error) {
    hyphen = { code: error.code, field: error.field };
  }
  tracker.identify('42');
  ids.push(tracker.track('added_to_cart', { sku: 'J-1' }));
  await tracker.flush();
  window.result = { ids, hyphen, anonymousId: tracker.anonymousId, sessionId: tracker.sessionId };
}
