// pnp-vision console: plain JS, no build step. Everything comes from the console's /api, which
// talks to the capture daemon and the worker like any controller. One event stream brings the
// worker's and cameras' state and every answered inspection; tiles are fetched within a byte
// budget so an idle tab stays light; the labelling view (labels.js) loads when first opened.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
};
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = new Error((body && (body.message || body.error)) || response.statusText);
    error.code = body && body.error;
    throw error;
  }
  return body;
}
const post = (path, body) => api(path, {
  method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});

// -- words and numbers --------------------------------------------------------------------------

const pad = (n, w = 2) => String(n).padStart(w, "0");
function fmtWhen(unix) {
  if (unix === null || unix === undefined) return "-";
  const d = new Date(unix * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)[0]}`;
}
function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
const fmtMs = (ms) => ms === null || ms === undefined ? "-" : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);

let bar = null;  // the worker's confidence bar, from its status

// What an answer may be acted on as, in words: untrained and unfamiliar come first, since a
// probability means nothing there.
function confidence(a) {
  if (a.trained === false) return {word: "untrained", cls: "untrained"};
  if (a.familiar === false) return {word: "unfamiliar", cls: "unfamiliar"};
  if (a.confident) return {word: "confident", cls: "confident"};
  return {word: "not confident", cls: "notconfident"};
}
function answerBadge(answer, confident) {
  const cls = answer === "YES" ? "yes" : answer === "NO" ? "no" : "other";
  return el("span", {class: `answer ${cls}${confident ? "" : " unsure"}`}, answer);
}
function confBadge(a) {
  const c = confidence(a);
  return el("span", {class: `conf ${c.cls}`}, c.word);
}
function probBar(p) {
  const meter = el("span", {class: "prob", title: `p ${p.toFixed(3)}; bar ${bar ?? "?"}`});
  const fill = el("i");
  fill.style.width = `${(p * 100).toFixed(1)}%`;
  meter.append(fill);
  if (bar !== null) {
    const tick = el("b");
    tick.style.left = `${(bar * 100).toFixed(1)}%`;
    meter.append(tick);
  }
  return meter;
}

// -- template boxes over a frame ----------------------------------------------------------------

// Boxes in frame pixels, drawn inside the displayed image (borders inside the box), one label
// per distinct box with the names of the templates sharing it stacked, and labels moved down
// until none overlaps another.
function drawBoxes(overlay, boxes, width, height, shownWidth) {
  overlay.replaceChildren();
  if (!width || !height) return;
  const scale = shownWidth / width;
  const shownHeight = height * scale;
  const placed = [];
  for (const group of boxes) {
    const [left, top, right, bottom] = group.box;
    const roi = el("div", {class: "roi", "data-templates": group.templates.join(",")});
    Object.assign(roi.style, {left: `${left * scale}px`, top: `${top * scale}px`,
      width: `${(right - left) * scale}px`, height: `${(bottom - top) * scale}px`});
    overlay.append(roi);
    const label = el("div", {class: "roi-label"});
    for (const name of group.templates) label.append(el("div", {}, name));
    overlay.append(label);
    const w = label.offsetWidth, h = label.offsetHeight;
    let x = Math.min(left * scale + 2, Math.max(0, shownWidth - w));
    let y = top * scale + 2;
    for (let moved = true; moved;) {
      moved = false;
      for (const p of placed) {
        if (x < p.x + p.w && p.x < x + w && y < p.y + p.h && p.y < y + h) { y = p.y + p.h + 1; moved = true; }
      }
    }
    y = Math.min(y, Math.max(0, shownHeight - h));
    Object.assign(label.style, {left: `${x}px`, top: `${y}px`});
    placed.push({x, y, w, h});
  }
}

// -- the worker ---------------------------------------------------------------------------------

let workerState = "unknown";
const workerWatchers = [];  // called on every state change (an ask waiting for a reply)

function renderWorker(w) {
  const pill = $("worker");
  pill.dataset.state = w.state;
  pill.textContent = w.state;
  let detail = w.detail || "";
  if (w.state === "stopped" && w.since) detail += ` · since ${fmtWhen(w.since).slice(11, 19)}`;
  detail += ` · ${w.endpoint}`;
  if (w.answered !== undefined) detail += ` · answers ${w.answered} · errors ${w.errors}`;
  $("worker-detail").textContent = detail;
  $("worker-detail").title = detail;
  if (w.state !== workerState) {
    workerState = w.state;
    for (const watcher of workerWatchers) watcher(w);
  }
  $("reload").disabled = ["stopped", "loading", "reloading", "stopping"].includes(w.state);
  if (!w.model) return;
  bar = w.bar;
  for (const node of document.querySelectorAll(".bar-value")) node.textContent = bar === null ? "?" : bar.toFixed(2);
  $("model-path").textContent = w.model.path;
  $("model-fingerprint").textContent = w.model.fingerprint ?? "-";
  $("model-generation").textContent = w.model.generation ?? "-";
  $("model-device").textContent = [w.model.device, w.model.dtype].filter(Boolean).join(" · ") +
    (w.model.adapters ? ` · ${w.model.adapters} adapter route(s)` : "");
  const r = w.reload;
  $("model-reload").textContent = r === null ? `none since the worker started (${fmtAge(w.uptime_s)} ago)`
    : r.state === "loading" ? `loading generation ${r.generation} since ${fmtWhen(r.started)}`
    : `${r.state} · generation ${r.generation} · ${fmtWhen(r.started)}` +
      (r.load_s !== null ? ` · ${r.load_s.toFixed(1)} s` : "") + (r.error ? ` · ${r.error}` : "");
  $("model-bar").textContent = bar === null ? "-" : bar.toFixed(2);
  $("model-answers").textContent = `${w.answered} answered · ${w.errors} errors (inspections only)`;
  const body = $("per-template").tBodies[0];
  body.replaceChildren();
  const names = new Set([...templates.map((t) => t.name), ...Object.keys(w.templates)]);
  for (const name of [...names].sort()) {
    const t = w.templates[name] || {answered: 0, errors: {}, p50_ms: null, p95_ms: null};
    const errors = Object.entries(t.errors).map(([code, n]) => `${code} ${n}`).join(", ");
    body.append(el("tr", {"data-template": name},
      el("td", {}, name), el("td", {class: "answered"}, String(t.answered)),
      el("td", {class: errors ? "errors errors-some" : "errors"}, errors || "0"),
      el("td", {}, fmtMs(t.p50_ms)), el("td", {}, fmtMs(t.p95_ms))));
  }
}

// -- cameras ------------------------------------------------------------------------------------

const TILE_BUDGET = 30000;  // bytes/s of tiles per tab: an idle tab stays well under 50 kB/s
const TILE_MIN_MS = 500;
const tiles = new Map();  // camera -> {root, img, overlay, meta, note, shown, boxesKey, cam}

function tileFor(cam) {
  let tile = tiles.get(cam.name);
  if (tile) return tile;
  $("cameras").querySelector(".empty")?.remove();
  const img = el("img", {alt: cam.name});
  const overlay = el("div", {class: "overlay"});
  const note = el("div", {class: "down-note"});
  const box = el("div", {class: "frame-box", title: "click: live at full rate"}, img, overlay, note);
  const pill = el("span", {class: "pill"});
  const meta = el("div", {class: "meta"});
  const root = el("div", {class: "tile", id: "tile-" + cam.name},
    el("div", {class: "tile-head"}, el("strong", {}, cam.name), pill), box, meta);
  box.onclick = () => openZoom(cam.name);
  $("cameras").append(root);
  $("ask-camera").append(el("option", {value: cam.name}, cam.name));
  $("filter-camera").append(el("option", {value: cam.name}, cam.name));
  tile = {root, img, overlay, note, pill, meta, shown: null, boxesKey: null, cam};
  tiles.set(cam.name, tile);
  return tile;
}

function renderCameras(cameras) {
  for (const cam of cameras) {
    const tile = tileFor(cam);
    tile.cam = cam;
    const down = cam.state === "stale" || cam.state === "offline";
    tile.root.classList.toggle("down", down);
    tile.root.dataset.state = cam.state;
    tile.pill.dataset.state = cam.state;
    tile.pill.textContent = cam.state;
    tile.note.textContent = cam.state === "offline"
      ? `offline: capture silent for ${fmtAge(cam.silent_s)}` + (cam.age_s !== null ? ` · no frames for ${fmtAge(cam.age_s)}` : "")
      : `no frames for ${fmtAge(cam.age_s)}`;
    const parts = [cam.capture_state ? `capture ${cam.capture_state}` : "no status",
      `${cam.fps?.toFixed(1) ?? "-"} fps`, `frame age ${fmtAge(cam.age_s)}`, `seq ${cam.seq ?? "-"}`,
      `drops ${cam.drops ?? "-"}`, `reconnects ${cam.reconnects ?? "-"}`];
    if (cam.last_error) parts.push(cam.last_error);
    tile.meta.textContent = parts.join(" · ");
    const key = `${cam.width}x${cam.height}:${JSON.stringify(cam.boxes)}`;
    if (key !== tile.boxesKey && cam.width) {
      tile.boxesKey = key;
      drawBoxes(tile.overlay, cam.boxes, cam.width, cam.height, 320);
    }
  }
}

async function fetchImage(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  const blob = await response.blob();
  return {blob, headers: response.headers};
}
function show(img, blob) {
  const old = img.src;
  img.src = URL.createObjectURL(blob);
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
}

let firstTile = null;  // when the first tile was shown (performance.now()), for the tests
async function tileLoop() {
  for (;;) {
    const started = performance.now();
    let bytes = 0;
    if (document.visibilityState === "visible" && currentView === "live") {
      for (const tile of tiles.values()) {
        const cam = tile.cam;
        const ident = `${cam.session}/${cam.seq}`;
        if (cam.seq === null || ident === tile.shown) continue;
        try {
          const got = await fetchImage(`api/cameras/${encodeURIComponent(cam.name)}/frame.jpg?size=tile`);
          bytes += got.blob.size;
          show(tile.img, got.blob);
          tile.shown = ident;
          tile.root.dataset.seq = got.headers.get("X-Seq");
          if (firstTile === null) { firstTile = performance.now(); document.body.dataset.firstTile = "yes"; }
        } catch { /* the state stream says what is wrong with the camera */ }
      }
    }
    const wait = Math.max(TILE_MIN_MS, (bytes / TILE_BUDGET) * 1000) - (performance.now() - started);
    await sleep(Math.max(50, wait));
  }
}

// -- the enlarged camera: live at full rate -----------------------------------------------------

let zoomed = null;
async function openZoom(name) {
  const dialog = $("zoom");
  const img = $("zoom-img");
  img.removeAttribute("src");
  $("zoom-title").textContent = name;
  dialog.showModal();
  const token = {name};
  zoomed = token;
  let seq = null, frames = 0, since = performance.now(), drawn = null;
  while (zoomed === token && dialog.open) {
    const cam = tiles.get(name).cam;
    try {
      const after = seq === null ? "" : `&after=${seq}`;
      const got = await fetchImage(`api/cameras/${encodeURIComponent(name)}/frame.jpg?size=full${after}`);
      if (zoomed !== token) break;
      const next = Number(got.headers.get("X-Seq"));
      if (next !== seq) frames += 1;
      seq = next;
      show(img, got.blob);
      await img.decode().catch(() => {});
      img.dataset.seq = String(seq);
      const key = `${img.clientWidth}:${cam.width}x${cam.height}`;
      if (key !== drawn) {
        drawn = key;
        drawBoxes(dialog.querySelector(".overlay"), cam.boxes, cam.width, cam.height, img.clientWidth);
      }
      const seconds = (performance.now() - since) / 1000;
      $("zoom-meta").textContent = `${cam.state} · seq ${seq} · ${(frames / Math.max(seconds, 0.001)).toFixed(1)} frames/s shown · frame age ${fmtAge(cam.age_s)}`;
      if (seconds > 5) { frames = 0; since = performance.now(); }
    } catch {
      await sleep(1000);
    }
  }
}

// -- inspections --------------------------------------------------------------------------------

const MAX_ROWS = 300;
const seenAnswers = new Set();
let templates = [];

function addInspection(item) {
  const body = $("inspections").tBodies[0];
  item.answers.forEach((a, i) => {
    const key = `${item.id}/${i}`;
    if (seenAnswers.has(key)) return;
    seenAnswers.add(key);
    const c = confidence(a);
    const frame = item.frame || {};
    const age = frame.age_ms !== null && frame.age_ms !== undefined ? fmtAge(frame.age_ms / 1000) : "-";
    const params = Object.entries(a.params).map(([k, v]) => `${k}=${v}`).join(", ");
    const crop = el("img", {alt: "crop", loading: "lazy",
      src: `api/inspections/${encodeURIComponent(item.id)}/${i}/crop.jpg`});
    const row = el("tr", {"data-id": item.id, "data-question": String(i), "data-camera": item.camera ?? "",
        "data-template": a.template, "data-answer": a.answer, "data-conf": c.cls},
      el("td", {class: "when"}, fmtWhen(item.time)),
      el("td", {}, item.camera ?? "(image)"),
      el("td", {class: "when"}, frame.seq !== null && frame.seq !== undefined ? `seq ${frame.seq} · age ${age}` : frame.source || "-"),
      el("td", {}, a.template, params ? el("div", {class: "note"}, params) : null),
      el("td", {class: "answer-cell"}, answerBadge(a.answer, c.cls === "confident"), " ", confBadge(a)),
      el("td", {}, a.probability.toFixed(2), probBar(a.probability)),
      el("td", {}, fmtMs(item.total_ms)),
      el("td", {}, crop));
    row.onclick = () => openDetail(item, i);
    body.prepend(row);
    if (![...$("filter-answer").options].some((o) => o.value === a.answer)) {
      $("filter-answer").append(el("option", {value: a.answer}, a.answer));
    }
    applyFilter(row);
  });
  while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  countRows();
}

function applyFilter(row) {
  const camera = $("filter-camera").value, template = $("filter-template").value;
  const answer = $("filter-answer").value, unsure = $("filter-unsure").checked;
  row.hidden = (camera && row.dataset.camera !== camera) || (template && row.dataset.template !== template) ||
    (answer && row.dataset.answer !== answer) || (unsure && row.dataset.conf === "confident");
}
function countRows() {
  const rows = [...$("inspections").tBodies[0].rows];
  $("history-count").textContent = `showing ${rows.filter((r) => !r.hidden).length} of ${rows.length}`;
}
function setupFilters() {
  for (const id of ["filter-camera", "filter-template", "filter-answer", "filter-unsure"]) {
    $(id).onchange = () => { for (const row of $("inspections").tBodies[0].rows) applyFilter(row); countRows(); };
  }
}

async function openDetail(item, i) {
  const a = item.answers[i];
  const dialog = $("detail");
  const frame = item.frame || {};
  const c = confidence(a);
  $("detail-title").textContent = `${a.template} on ${item.camera ?? "an uploaded image"} · ${item.id}`;
  const facts = $("detail-facts");
  facts.replaceChildren();
  const fact = (name, ...value) => facts.append(el("dt", {}, name), el("dd", {}, ...value));
  fact("answer", answerBadge(a.answer, c.cls === "confident"), " ", confBadge(a));
  fact("probability", `${a.probability.toFixed(3)} (bar ${bar ?? "?"})`, probBar(a.probability));
  fact("params", Object.entries(a.params).map(([k, v]) => `${k}=${v}`).join(", ") || "-");
  fact("camera", item.camera ?? "(image)");
  fact("frame", frame.seq !== null && frame.seq !== undefined ? `seq ${frame.seq} · session ${frame.session}` : frame.source || "-");
  fact("captured", fmtWhen(frame.capture_time));
  fact("frame age", frame.age_ms !== null && frame.age_ms !== undefined ? `${fmtAge(frame.age_ms / 1000)} when the worker took it` : "-");
  fact("answered", fmtWhen(item.time));
  fact("reply time", `${fmtMs(item.total_ms)} ms`);
  const crop = $("detail-crop");
  crop.removeAttribute("style");
  crop.onload = () => {
    // at least the size the model saw, twice that when it is small
    const factor = crop.naturalWidth < 300 ? 2 : 1;
    crop.style.width = `${crop.naturalWidth * factor}px`;
    $("detail-crop-caption").textContent = `what the model saw: ${crop.naturalWidth}x${crop.naturalHeight}` +
      (factor > 1 ? `, shown at ${factor}x` : "");
  };
  crop.src = `api/inspections/${encodeURIComponent(item.id)}/${i}/crop.png`;
  const img = $("detail-frame");
  img.removeAttribute("src");
  dialog.querySelector(".overlay").replaceChildren();
  dialog.showModal();
  try {
    const got = await fetchImage(`api/inspections/${encodeURIComponent(item.id)}/${i}/frame.jpg`);
    show(img, got.blob);
    await img.decode().catch(() => {});
    const box = (got.headers.get("X-Box") || "").split(",").filter(Boolean).map(Number);
    const [width, height] = (got.headers.get("X-Size") || "0,0").split(",").map(Number);
    if (box.length === 4) {
      drawBoxes(dialog.querySelector(".overlay"), [{box, templates: [a.template]}], width, height, img.clientWidth);
    }
    img.dataset.loaded = "yes";
  } catch (e) {
    $("detail-title").textContent += ` (frame: ${e.message})`;
  }
}

// -- ask and reload -----------------------------------------------------------------------------

function paramInputs(container, template) {
  container.replaceChildren();
  for (const [name, spec] of Object.entries(template?.params || {})) {
    let input;
    if (spec.choices) {
      input = el("select", {"data-param": name, "aria-label": name});
      for (const choice of spec.choices) input.append(el("option", {value: choice}, choice));
    } else {
      input = el("input", {"data-param": name, placeholder: name, title: spec.description || "", "aria-label": name});
      if (spec.type === "integer") input.type = "number";
    }
    container.append(input);
  }
}
function paramValues(container) {
  const params = {};
  for (const input of container.querySelectorAll("[data-param]")) params[input.dataset.param] = input.value;
  return params;
}

function setupAsk() {
  const picker = $("ask-template");
  for (const t of templates) {
    picker.append(el("option", {value: t.name}, t.name));
    $("filter-template").append(el("option", {value: t.name}, t.name));
  }
  for (const answer of new Set(templates.flatMap((t) => t.answers || []))) {
    $("filter-answer").append(el("option", {value: answer}, answer));
  }
  const params = $("ask-params");
  const sync = () => paramInputs(params, templates.find((t) => t.name === picker.value));
  picker.onchange = sync;
  sync();
  const out = $("ask-result");
  let asking = null;
  workerWatchers.push((w) => {
    if (asking && w.state === "stopped") {
      asking = null;
      out.replaceChildren(`error: the worker stopped (${w.detail}); no answer`);
      out.dataset.state = "error";
    }
  });
  $("ask").onsubmit = async (event) => {
    event.preventDefault();
    if (workerState === "stopped") {
      out.replaceChildren("error: the worker is stopped; nothing can answer now");
      out.dataset.state = "error";
      return;
    }
    const ticket = {};
    asking = ticket;
    out.dataset.state = "asking";
    out.replaceChildren(`asking ${picker.value} on ${$("ask-camera").value}...`);
    try {
      const got = await post("api/ask", {camera: $("ask-camera").value, template: picker.value,
        params: paramValues(params)});
      if (asking !== ticket) return;
      const r = got.results[0];
      const frame = got.frame || {};
      out.replaceChildren(answerBadge(r.answer, r.confident), " ", confBadge(r),
        ` p ${r.probabilities[r.answer].toFixed(2)} · seq ${frame.seq ?? "-"} · frame age ${fmtAge((frame.age_ms ?? 0) / 1000)}` +
        ` · ${fmtMs(got.timings.total_ms)} ms`);
      out.dataset.state = "answered";
    } catch (e) {
      if (asking !== ticket) return;
      out.replaceChildren(`error: ${e.message}`);
      out.dataset.state = "error";
    } finally {
      if (asking === ticket) asking = null;
    }
  };
  $("reload").onclick = async () => {
    const result = $("reload-result");
    result.textContent = "reloading...";
    try {
      const got = await post("api/reload", {});
      result.textContent = `generation ${got.model.generation} answers (${got.load_s.toFixed(1)} s)`;
    } catch (e) {
      result.textContent = `reload failed: ${e.message}`;
    }
  };
}

// -- views --------------------------------------------------------------------------------------

let currentView = "live";
function setupViews() {
  for (const button of document.querySelectorAll("header nav button")) {
    button.onclick = () => {
      currentView = button.dataset.view;
      for (const b of document.querySelectorAll("header nav button")) b.classList.toggle("on", b === button);
      $("view-live").hidden = currentView !== "live";
      $("view-labels").hidden = currentView !== "labels";
      if (currentView === "labels" && !document.querySelector("script[src$='labels.js']")) {
        document.body.append(el("script", {src: "static/labels.js"}));
      }
      window.dispatchEvent(new Event("pnp-view"));
    };
  }
  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.querySelector(".close").onclick = () => dialog.close();
    dialog.addEventListener("close", () => { if (dialog.id === "zoom") zoomed = null; });
  }
  $("show-boxes").onchange = () => document.body.classList.toggle("hide-boxes", !$("show-boxes").checked);
}

function listen() {
  const events = new EventSource("api/events");
  events.addEventListener("state", (message) => {
    const state = JSON.parse(message.data);
    renderWorker(state.worker);
    renderCameras(state.cameras);
  });
  events.addEventListener("inspection", (message) => addInspection(JSON.parse(message.data)));
  events.onerror = () => {
    $("worker").dataset.state = "unknown";
    $("worker").textContent = "console unreachable";
  };
}

async function main() {
  setupViews();
  setupFilters();
  try { templates = await api("api/templates"); } catch { templates = []; }
  setupAsk();
  listen();
  tileLoop();
  document.body.dataset.ready = "yes";
}

window.pnp = {api, post, el, $, fmtWhen, fmtAge, confidence, answerBadge, confBadge, paramInputs,
  paramValues, get templates() { return templates; }, get view() { return currentView; }};
main();
