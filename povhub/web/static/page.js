// Sortable tables and live figures; served from the package (no CDN: government networks are offline).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.sortable")) {
    table.querySelectorAll("th").forEach((th, column) => th.addEventListener("click", () => {
      const body = table.tBodies[0];
      const down = th.getAttribute("aria-sort") !== "descending";
      table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", down ? "descending" : "ascending");
      const key = tr => { const td = tr.cells[column]; const v = td && (td.dataset.sort ?? td.textContent.trim());
                          return v !== "" && !isNaN(v) ? Number(v) : v; };
      const rows = [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
        const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), "th");
        return down ? -c : c; });
      rows.forEach(r => body.appendChild(r));
    }));
  }
  // Live: the server says when any figure of this page changed; then the page reloads itself.
  const live = document.querySelector("[data-live]");
  if (live) {
    const poll = async () => {
      try {
        const r = await fetch(live.dataset.live, {credentials: "same-origin", cache: "no-store"});
        if (r.ok && (await r.json()).etag !== live.dataset.etag) { location.reload(); return; }
      } catch (e) { /* offline a moment: try again at the next tick */ }
      setTimeout(poll, 5000);
    };
    setTimeout(poll, 5000);
  }
});
