// Gatekeeper's approval pages: small enhancements only. Every rule is enforced by the server;
// without this script the pages still work (the server refuses an incomplete checklist).
"use strict";

// The approve and correct buttons wait until every finding is ticked.
function setUpChecklist(form) {
  const boxes = Array.from(form.querySelectorAll("input[data-finding]"));
  const gated = Array.from(form.querySelectorAll("button[data-needs-all]"));
  const progress = form.querySelector("[data-progress]");
  if (!boxes.length || !gated.length) return;
  const update = () => {
    const ticked = boxes.filter((b) => b.checked).length;
    const all = ticked === boxes.length;
    gated.forEach((button) => { button.disabled = !all; });
    if (progress) {
      progress.textContent = all
        ? "Every finding checked: you may approve or correct."
        : `${ticked} of ${boxes.length} findings checked: tick each one to approve or correct.`;
    }
  };
  boxes.forEach((box) => box.addEventListener("change", update));
  update();
}

// The queue's count refreshes itself, so a checker sees new items without reloading.
function setUpCount(element) {
  const url = element.getAttribute("data-count-url");
  const number = element.querySelector("[data-count]");
  if (!url || !number) return;
  const refresh = async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const figures = await response.json();
      if (String(figures.count) !== number.textContent) {
        number.textContent = String(figures.count);
        document.title = `(${figures.count}) Approval queue · Gatekeeper`;
      }
    } catch (error) {
      // Offline for a moment: the next round tries again.
    }
  };
  window.setInterval(refresh, 15000);
}

// j/k move between queue rows, / goes to the sender filter.
function setUpKeys() {
  const links = () => Array.from(document.querySelectorAll("[data-row-link]"));
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target instanceof HTMLElement && target.closest("input, textarea, select")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const rows = links();
    if ((event.key === "j" || event.key === "k") && rows.length) {
      const at = rows.indexOf(document.activeElement);
      const next = event.key === "j" ? Math.min(at + 1, rows.length - 1) : Math.max(at - 1, 0);
      rows[at < 0 ? 0 : next].focus();
      event.preventDefault();
    } else if (event.key === "/") {
      const filter = document.querySelector("[data-shortcut='/']");
      if (filter instanceof HTMLElement) { filter.focus(); event.preventDefault(); }
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-checklist]").forEach(setUpChecklist);
  document.querySelectorAll("[data-count-url]").forEach(setUpCount);
  setUpKeys();
});
