// What the package README asks of a Vite app for `vite dev`: the package stays out of dependency
// pre-bundling, so its `new URL('./wasm/…', import.meta.url)` still points at the .wasm.
export default { optimizeDeps: { exclude: ['@eventline/tracker'] } };
