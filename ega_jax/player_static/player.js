"use strict";
// The danmaku preview (ega_jax/player.py). Comment text is untrusted: it only ever reaches the page
// through textContent, and the page's CSP allows no inline script.
//
// Positions are a pure function of the clock (the video's currentTime, or the frame stepper's), so
// pausing, seeking and scrubbing show what Bilibili would show at that instant: a scrolling comment
// (mode 1) enters at the right edge at its time and leaves at the left edge SCROLL_S later, in the
// first lane whose previous comment has cleared the right edge; top (5) and bottom (4) comments
// stay centred for FIXED_S.
const SCROLL_S = 8, FIXED_S = 4, GAP_PX = 24;

const data = JSON.parse(document.getElementById("track").textContent);
const stage = document.getElementById("stage");
const layer = document.getElementById("danmaku");
const status = document.getElementById("status");
const video = document.getElementById("video");
const frameImg = document.getElementById("frame");
const shown = new Map();      // comment index -> element
let lanes = null;             // per lane: the scrolling comment that entered last (index), for lane choice
let laneOf = null;            // comment index -> lane, fixed once chosen so that seeking back is stable
let measured = new Map();     // comment index -> width in px

function lineHeight() {
  return Math.max(18, Math.round(stage.clientHeight / 12));
}

function widthOf(i) {
  if (!measured.has(i)) {
    const probe = document.createElement("span");
    probe.className = "dm";
    probe.style.visibility = "hidden";
    probe.textContent = data.comments[i].text;
    layer.appendChild(probe);
    measured.set(i, probe.getBoundingClientRect().width);
    probe.remove();
  }
  return measured.get(i);
}

// Lanes are assigned once, in time order, as a Bilibili player would: comment c may use a lane when
// the lane's previous comment has fully entered (its tail left the right edge by GAP_PX) at c's time
// and c, faster or not, cannot catch it before it leaves. Otherwise the lane that frees first.
function assignLanes() {
  const W = stage.clientWidth, n = Math.max(1, Math.floor(stage.clientHeight / lineHeight()) - 1);
  lanes = new Array(n).fill(-1);
  laneOf = new Map();
  const fixed = {4: new Array(n).fill(-Infinity), 5: new Array(n).fill(-Infinity)};
  data.comments.forEach((c, i) => {
    if (c.mode === 4 || c.mode === 5) {
      const busy = fixed[c.mode];
      let lane = busy.findIndex((until) => until <= c.t);
      if (lane < 0) lane = busy.indexOf(Math.min(...busy));
      busy[lane] = c.t + FIXED_S;
      laneOf.set(i, c.mode === 5 ? lane : n - 1 - lane);
      return;
    }
    const w = widthOf(i), speed = (W + w) / SCROLL_S;
    let best = 0, bestFree = Infinity;
    for (let lane = 0; lane < n; lane++) {
      const p = lanes[lane];
      if (p < 0) { best = lane; break; }
      const pc = data.comments[p], pw = widthOf(p), pspeed = (W + pw) / SCROLL_S;
      const entered = pc.t + (pw + GAP_PX) / pspeed;           // its tail is GAP_PX inside the stage
      // A faster comment must not reach the left edge before the previous one's tail has left it.
      const free = Math.max(entered, speed > pspeed ? pc.t + SCROLL_S - W / speed : -Infinity);
      if (free <= c.t) { best = lane; break; }
      if (free < bestFree) { best = lane; bestFree = free; }
    }
    lanes[best] = i;
    laneOf.set(i, best);
  });
}

function clock() {
  return video ? video.currentTime : stepper.now;
}

function render() {
  if (laneOf === null) assignLanes();
  const now = clock(), W = stage.clientWidth, lh = lineHeight();
  const visible = new Set();
  // Comments are sorted by time; only those sent within the last SCROLL_S seconds can be on screen.
  let lo = 0, hi = data.comments.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (data.comments[mid].t < now - SCROLL_S) lo = mid + 1; else hi = mid; }
  for (let i = lo; i < data.comments.length && data.comments[i].t <= now; i++) {
    const c = data.comments[i], age = now - c.t;
    const fixed = c.mode === 4 || c.mode === 5;
    if (age >= (fixed ? FIXED_S : SCROLL_S)) continue;
    visible.add(i);
    let e = shown.get(i);
    if (!e) {
      e = document.createElement("span");
      e.className = "dm" + (fixed ? " fixed" : "");
      e.textContent = c.text;
      e.dataset.index = String(i);
      if (c.color) e.style.color = c.color;
      layer.appendChild(e);
      shown.set(i, e);
    }
    const y = laneOf.get(i) * lh;
    const x = fixed ? (W - widthOf(i)) / 2 : W - age / SCROLL_S * (W + widthOf(i));
    e.style.transform = "translate(" + x.toFixed(1) + "px," + y + "px)";
  }
  for (const [i, e] of shown) {
    if (!visible.has(i)) { e.remove(); shown.delete(i); }
  }
  document.getElementById("clock").textContent = now.toFixed(1) + " s";
  document.getElementById("count").textContent = visible.size + " on screen";
  requestAnimationFrame(render);
}

// A frame folder: a clock that steps through the images at their times.
const stepper = {
  now: 0, playing: false, last: null,
  duration: data.frames ? data.frames.end : 0,
  tick(ts) {
    if (stepper.playing) {
      if (stepper.last !== null) stepper.seek(stepper.now + (ts - stepper.last) / 1000);
      stepper.last = ts;
      if (stepper.now >= stepper.duration) stepper.pause();
    }
    requestAnimationFrame(stepper.tick);
  },
  seek(t) {
    stepper.now = Math.min(Math.max(0, t), stepper.duration);
    const fs = data.frames.images;
    let k = 0;
    while (k + 1 < fs.length && fs[k + 1].start <= stepper.now) k++;
    if (frameImg.dataset.k !== String(k)) { frameImg.src = fs[k].src; frameImg.dataset.k = String(k); }
    document.getElementById("seek").value = String(stepper.now);
  },
  play() { stepper.playing = true; stepper.last = null; document.getElementById("play").textContent = "Pause"; },
  pause() { stepper.playing = false; document.getElementById("play").textContent = "Play"; },
};

// The test harness (and a curious user's console) can set the clock: window.egaSeek(seconds).
window.egaSeek = (t) => { if (video) video.currentTime = t; else stepper.seek(t); };

if (video) {
  video.addEventListener("error", () => {
    status.textContent = "This browser cannot play " + video.getAttribute("src") +
      " (convert it to H.264 MP4 or VP9 WebM, or preview a frame folder).";
    status.hidden = false;
  });
} else {
  const seek = document.getElementById("seek");
  seek.max = String(stepper.duration);
  seek.addEventListener("input", () => stepper.seek(parseFloat(seek.value)));
  document.getElementById("play").addEventListener("click", () => (stepper.playing ? stepper.pause() : stepper.play()));
  stepper.seek(0);
  requestAnimationFrame(stepper.tick);
}
window.addEventListener("resize", () => restart());
document.getElementById("total").textContent = data.comments.length + " comments";
// Widths (and so lanes and speeds) are measured once the embedded CJK font is in: the font is
// fetched on first use, so it is asked for explicitly before anything is drawn. Should glyphs
// arrive later still, elements are made afresh (one drawn before the font stays blank boxes).
function restart() {
  laneOf = null;
  measured = new Map();
  for (const e of shown.values()) e.remove();
  shown.clear();
}
const sample = data.comments.slice(0, 500).map((c) => c.text).join("") || "弹幕";
let started = false;
document.fonts.addEventListener("loadingdone", () => { if (started) restart(); });
document.fonts.load("26px 'EGA CJK'", sample).catch(() => null).finally(() => {
  started = true;
  restart();
  requestAnimationFrame(render);
});
