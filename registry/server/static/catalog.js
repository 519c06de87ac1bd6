// Copy buttons for the usage code: progressive enhancement, the code stays selectable without JavaScript.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const status = document.querySelector(".copy-status");
  const say = (text) => { if (status) status.textContent = text; };
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const code = document.getElementById(button.dataset.copy);
    if (!code) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const text = code.textContent;
      try {
        await navigator.clipboard.writeText(text);
      } catch (error) {
        // No clipboard API (a page not served over HTTPS or localhost): select the text for Ctrl+C.
        const range = document.createRange();
        range.selectNodeContents(code);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        say("Selected: press Ctrl+C (or Cmd+C) to copy.");
        return;
      }
      button.textContent = "Copied";
      say(`Copied “${button.dataset.name}” to the clipboard.`);
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
});
