// A node:test reporter that prints one closing summary of the e2e run after the spec output:
// each test with its result and time, then "N passed, N failed".
export default async function* summary(source) {
  const results = [];
  for await (const event of source) {
    if ((event.type === "test:pass" || event.type === "test:fail") && event.data.details?.type !== "suite") {
      if (event.data.nesting !== 0 && event.data.name.startsWith("<")) continue;
      results.push({
        ok: event.type === "test:pass" && !event.data.skip,
        skipped: Boolean(event.data.skip || event.data.todo),
        name: event.data.name,
        file: (event.data.file || "").split("/").pop(),
        ms: event.data.details?.duration_ms ?? 0,
        error: event.type === "test:fail" ? String(event.data.details?.error?.cause?.message ?? event.data.details?.error?.message ?? "").split("\n")[0] : "",
      });
    }
  }
  const passed = results.filter((r) => r.ok).length;
  const skipped = results.filter((r) => r.skipped).length;
  const failed = results.length - passed - skipped;
  yield "\n==== e2e summary ====\n";
  for (const r of results) {
    const mark = r.skipped ? "SKIP" : r.ok ? "ok  " : "FAIL";
    yield `${mark} ${(r.ms / 1000).toFixed(1).padStart(5)} s  ${r.file}: ${r.name}\n`;
    if (r.error) yield `             ${r.error.slice(0, 300)}\n`;
  }
  yield `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`;
}
