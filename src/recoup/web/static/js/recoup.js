// Small behaviours of Recoup's pages, kept out of inline attributes so a strict CSP can apply.
"use strict";

// A form with data-confirm asks before it is sent (revoking a key, for example).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
