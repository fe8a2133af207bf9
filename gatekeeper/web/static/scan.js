// The scan station: keep the code field ready for the next scan, and sound an alarm.
// Every rule is the server's; without this script the station works the same.
"use strict";

function soundAlarm() {
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.type = "square";
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.6);
  } catch (error) {
    // No audio output: the red panel says it.
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const field = document.getElementById("code");
  if (field instanceof HTMLInputElement) {
    field.focus();
    // A scanner types fast and presses Enter; a click elsewhere must not lose the next scan.
    document.addEventListener("click", (event) => {
      const target = event.target;
      if (target instanceof HTMLElement && !target.closest("input, button, a, label")) field.focus();
    });
  }
  if (document.querySelector("[data-outcome='alarm']")) soundAlarm();
});
