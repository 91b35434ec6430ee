// The loader snippet: paste inline before <script type="module" src=".../eventline.js">.
// Records each call with its time until eventline.js replays the queue.
window.eventline =
  window.eventline ||
  function () {
    (eventline.q = eventline.q || []).push([Date.now(), arguments]);
  };
