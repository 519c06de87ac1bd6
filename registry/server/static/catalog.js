// Copy buttons for the usage code: progressive enhancement, the code stays selectable without JavaScript.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const status = document.querySelector(".copy-status");
  const say = (text) => { if (status) status.textContent = text; };
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const code = document.getElementById(button.dataset.copy);
    if (!code) continue;
    // What happened is said right beside the button, where the eye is (the page-wide status may be far away).
    const hint = document.createElement("span");
    hint.className = "copy-hint";
    hint.setAttribute("role", "status");
    button.insertAdjacentElement("afterend", hint);
    button.hidden = false;
    button.addEventListener("click", async () => {
      const text = code.textContent;
      try {
        // Absent on a page not served over HTTPS or from localhost (an "insecure context"): the fallback below.
        await navigator.clipboard.writeText(text);
      } catch (error) {
        const range = document.createRange();
        range.selectNodeContents(code);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        const secure = window.isSecureContext ? "" : " (this page is not on HTTPS, so the browser allows no copy button)";
        hint.textContent = `Selected: press Ctrl+C (⌘C on a Mac) to copy${secure}.`;
        say(hint.textContent);
        return;
      }
      button.textContent = "Copied";
      hint.textContent = "";
      say(`Copied “${button.dataset.name}” to the clipboard.`);
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
});
