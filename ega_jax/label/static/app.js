"use strict";
// Comment text is untrusted: it only ever reaches the page through textContent.
let page = null;
let dirty = false;   // clicks not yet submitted

function setDirty(value) {
  dirty = value;
  document.getElementById("unsaved").hidden = !value;
}

function el(tag, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

function status(msg, isError) {
  const s = document.getElementById("status");
  s.textContent = msg;
  s.className = isError ? "error" : "";
}

function updateCount() {
  const n = document.querySelectorAll('button.comment[aria-pressed="true"]').length;
  const total = document.querySelectorAll("button.comment").length;
  document.getElementById("count").textContent = n + " of " + total + " comments marked fake";
}

function render(data) {
  page = data;
  document.getElementById("who").textContent = "Rater: " + data.rater + " (" + data.frames.length + " frames)";
  setDirty(false);
  const root = document.getElementById("frames");
  root.replaceChildren();
  data.frames.forEach((frame, f) => {
    const card = el("section", "frame");
    card.dataset.frame = String(f);
    const stage = el("div", "stage");
    const img = el("img");
    img.src = frame.image;
    img.alt = "video frame " + (f + 1);
    stage.appendChild(img);
    const list = el("ul", "comments");
    frame.items.forEach((item, k) => {
      const fly = el("bdi", "danmaku");
      fly.textContent = item.text;
      fly.style.top = (8 + (k * 29) % 200) + "px";
      fly.style.animationDelay = (k * 1.3) + "s";
      stage.appendChild(fly);
      const li = el("li");
      const b = el("button", "comment");
      b.type = "button";
      b.dataset.item = String(item.id);
      b.setAttribute("aria-pressed", item.fake ? "true" : "false");
      b.textContent = item.text;
      b.addEventListener("click", () => {
        b.setAttribute("aria-pressed", b.getAttribute("aria-pressed") === "true" ? "false" : "true");
        setDirty(true);
        updateCount();
      });
      li.appendChild(b);
      list.appendChild(li);
    });
    card.appendChild(stage);
    card.appendChild(list);
    root.appendChild(card);
  });
  document.getElementById("submit").disabled = false;
  document.getElementById("next").hidden = true;
  updateCount();
  status("");
}

async function load() {
  const r = await fetch("/api/page", {credentials: "same-origin"});
  if (r.status === 401) { location.href = "/"; return; }
  const data = await r.json();
  if (!r.ok) { status(data.error || "could not load a page", true); return; }
  render(data);
}

async function submit() {
  const labels = Array.from(document.querySelectorAll("button.comment")).map(b => ({
    item_id: b.dataset.item, fake: b.getAttribute("aria-pressed") === "true"}));
  if (!labels.some(l => l.fake) &&
      !confirm("You marked no comment as fake: every comment on this page counts as human-written. Submit?")) {
    return;
  }
  const button = document.getElementById("submit");
  button.disabled = true;
  status("saving…");
  try {
    const r = await fetch("/api/page/" + page.page_id + "/labels", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": page.csrf},
      body: JSON.stringify({labels: labels})});
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
    setDirty(false);
    status("Saved " + data.saved + " labels. Thank you!");
    document.getElementById("next").hidden = false;
  } catch (e) {
    status("Not saved: " + e.message + ". Try again.", true);
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  if (!confirm("Log out? Your invite link works only once: to come back you will need a new link from " +
               "the person running this study." + (dirty ? " Your clicks on this page are not saved." : ""))) {
    return;
  }
  await fetch("/logout", {method: "POST", credentials: "same-origin",
                          headers: {"X-CSRF-Token": page ? page.csrf : ""}});
  location.href = "/";
}

document.getElementById("submit").addEventListener("click", submit);
// Leaving or reloading the page loses unsubmitted clicks: ask first.
window.addEventListener("beforeunload", e => { if (dirty) { e.preventDefault(); e.returnValue = ""; } });
document.getElementById("next").addEventListener("click", load);
document.getElementById("logout").addEventListener("click", logout);
load();
