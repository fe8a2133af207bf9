// The register pages: the regulator's 72-hour clock ticks. The server's text is right when the
// page is drawn; this only keeps it right while the page stays open.
"use strict";

function describeDuration(milliseconds) {
  const minutes = Math.max(0, Math.floor(milliseconds / 60000));
  if (minutes === 0) return "under 1 min";
  const hours = Math.floor(minutes / 60);
  if (hours >= 72) return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  if (hours) return `${hours} h ${minutes % 60} min`;
  return `${minutes} min`;
}

function tickClock(clock) {
  const deadline = Date.parse(clock.getAttribute("data-deadline"));
  if (Number.isNaN(deadline)) return;
  const remaining = deadline - Date.now();
  const overdue = remaining < 0;
  clock.textContent = overdue
    ? `overdue by ${describeDuration(-remaining)}`
    : `${describeDuration(remaining)} left`;
  clock.classList.toggle("overdue", overdue);
  clock.classList.toggle("running", !overdue);
}

document.addEventListener("DOMContentLoaded", () => {
  const clocks = Array.from(document.querySelectorAll(".clock[data-deadline]:not([data-reported])"));
  if (!clocks.length) return;
  const tick = () => clocks.forEach(tickClock);
  tick();
  window.setInterval(tick, 15000);
});
