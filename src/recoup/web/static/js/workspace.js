// Keyboard shortcuts of the agent workspace: n next case, l log a contact, Ctrl+Enter save,
// Esc close, ? help. Keys typed into a field are the field's, except Ctrl+Enter and Esc.
"use strict";

document.addEventListener("keydown", (event) => {
  const target = event.target;
  const typing = target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  const form = document.getElementById("log-form");
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    if (form instanceof HTMLFormElement) {
      event.preventDefault();
      form.requestSubmit();
    }
    return;
  }
  if (event.key === "Escape") {
    document.querySelectorAll("details[open]").forEach((open) => open.removeAttribute("open"));
    if (typing && target instanceof HTMLElement) target.blur();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "n") {
    event.preventDefault();
    window.location.assign("/work/next");
  } else if (event.key === "l" && form) {
    event.preventDefault();
    form.scrollIntoView({ block: "start" });
    const first = form.querySelector("#log-outcome");
    if (first instanceof HTMLElement) first.focus();
  } else if (event.key === "?") {
    const help = document.querySelector("[data-testid=key-help]");
    if (help instanceof HTMLDetailsElement) help.open = !help.open;
  }
});
