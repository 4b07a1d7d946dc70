// The little script the pages use; every page works without it except the type-ahead.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Pages with a running job reload themselves.
  const auto = document.querySelector("[data-autorefresh]");
  if (auto) {
    setTimeout(() => location.reload(), 1000 * Number(auto.dataset.autorefresh || 3));
  }
  // Type-ahead: the server answers <option>s (escaped) for the text typed so far.
  for (const input of document.querySelectorAll("input[data-suggest]")) {
    const list = document.getElementById(input.getAttribute("list"));
    let timer = 0;
    let asked = "";
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const text = input.value.trim();
        if (!list || text === asked || text.length < 2) return;
        asked = text;
        const res = await fetch(`${input.dataset.suggest}?q=${encodeURIComponent(text)}`, {
          credentials: "same-origin",
        });
        if (res.ok && input.value.trim() === text) list.innerHTML = await res.text();
      }, 150);
    });
  }
  // "Select all" boxes tick every box of the named field in their form.
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    all.addEventListener("change", () => {
      const name = all.dataset.selectAll;
      for (const box of all.form.querySelectorAll(`input[name="${name}"]`)) box.checked = all.checked;
    });
  }
});
