// pnp-vision console: plain JS, no build step. Everything comes from the console's /api,
// which talks to the capture daemon and the worker like any controller.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const withToken = (url) => token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
};

async function api(path, options = {}) {
  const headers = {"Content-Type": "application/json"};
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, {...options, headers});
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || body.error || response.statusText);
  return body;
}

let templates = [];

function paramInputs(container, template) {
  container.replaceChildren();
  for (const [name, spec] of Object.entries(template?.params || {})) {
    let input;
    if (spec.choices) {
      input = el("select", {"data-param": name});
      for (const choice of spec.choices) input.append(el("option", {value: choice}, choice));
    } else {
      input = el("input", {"data-param": name, placeholder: name, title: spec.description || ""});
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

// -- cameras ----------------------------------------------------------------------------------

async function refreshCameras() {
  let cameras;
  try { cameras = await api("api/cameras"); } catch { return; }
  const root = document.getElementById("cameras");
  const picker = document.getElementById("ask-camera");
  for (const cam of cameras) {
    let tile = document.getElementById("tile-" + cam.name);
    if (!tile) {
      tile = el("div", {class: "tile", id: "tile-" + cam.name},
        el("strong", {}, cam.name), el("img", {alt: cam.name}), el("div", {class: "meta"}));
      root.append(tile);
      picker.append(el("option", {value: cam.name}, cam.name));
    }
    const img = tile.querySelector("img");
    if (cam.seq !== null && tile.dataset.seq !== String(cam.seq)) {
      tile.dataset.seq = String(cam.seq);
      img.src = withToken(`api/cameras/${encodeURIComponent(cam.name)}/frame.jpg?seq=${cam.seq}`);
    }
    const meta = tile.querySelector(".meta");
    meta.className = "meta " + (cam.state || "");
    meta.textContent = `${cam.state ?? "unseen"} · seq ${cam.seq ?? "-"} · ${cam.fps?.toFixed(1) ?? "-"} fps`
      + ` · age ${cam.age_ms?.toFixed(0) ?? "-"} ms · drops ${cam.drops ?? "-"} · reconnects ${cam.reconnects ?? "-"}`
      + (cam.last_error ? ` · ${cam.last_error}` : "");
  }
}

// -- worker health ----------------------------------------------------------------------------

async function refreshHealth() {
  const out = document.getElementById("worker-state");
  try {
    const s = await api("api/status");
    const errors = Object.entries(s.errors).filter(([, n]) => n > 0).map(([c, n]) => `${c} ${n}`);
    out.textContent = `${s.model.state} · ${s.model.info.device ?? ""} · queue ${s.queue.depth}/${s.queue.capacity}`
      + ` · answered ${s.counters.ok_replies} · errors ${errors.join(", ") || "none"}`;
  } catch (e) {
    out.textContent = "unreachable: " + e.message;
  }
}

// -- inspections, pushed ----------------------------------------------------------------------

function addInspection(item) {
  const body = document.querySelector("#inspections tbody");
  item.answers.forEach((a, i) => {
    const crop = el("img", {alt: "crop", src: withToken(`api/crop/${encodeURIComponent(item.id)}/${i}.png`)});
    const row = el("tr", {"data-id": item.id, "data-template": a.template, class: a.confident ? "" : "notconfident"},
      el("td", {}, new Date(item.time * 1000).toLocaleTimeString()),
      el("td", {}, item.camera ?? "(image)"),
      el("td", {}, String(item.frame?.seq ?? "-")),
      el("td", {}, a.template),
      el("td", {}, Object.entries(a.params).map(([k, v]) => `${k}=${v}`).join(",") || "-"),
      el("td", {class: "answer"}, a.answer),
      el("td", {}, a.probability.toFixed(2)),
      el("td", {}, a.confident ? "yes" : "no"),
      el("td", {}, item.total_ms.toFixed(1)),
      el("td", {}, crop));
    body.prepend(row);
  });
  while (body.rows.length > 200) body.deleteRow(-1);
}

function listen() {
  const events = new EventSource(withToken("api/events"));
  events.onmessage = (message) => addInspection(JSON.parse(message.data));
}

// -- ask --------------------------------------------------------------------------------------

async function setupAsk() {
  templates = await api("api/templates");
  const picker = document.getElementById("ask-template");
  const labelPicker = document.getElementById("label-template");
  for (const t of templates) {
    picker.append(el("option", {value: t.name}, t.name));
    labelPicker.append(el("option", {value: t.name}, t.name));
  }
  const params = document.getElementById("ask-params");
  const sync = () => paramInputs(params, templates.find((t) => t.name === picker.value));
  picker.onchange = sync;
  sync();
  document.getElementById("ask").onsubmit = async (event) => {
    event.preventDefault();
    const out = document.getElementById("ask-result");
    out.textContent = "asking...";
    try {
      const got = await api("api/ask", {method: "POST", body: JSON.stringify({
        camera: document.getElementById("ask-camera").value, template: picker.value,
        params: paramValues(params)})});
      const r = got.results[0];
      out.textContent = `${r.answer} (${r.probabilities[r.answer].toFixed(2)}) on seq ${got.frame?.seq}`;
    } catch (e) {
      out.textContent = "error: " + e.message;
    }
  };
}

// -- recordings and labels --------------------------------------------------------------------

let shown = 0;  // the latest showRecording call: an earlier one still loading must not draw

async function showRecording() {
  const call = ++shown;
  const name = document.getElementById("recording").value;
  const template = templates.find((t) => t.name === document.getElementById("label-template").value);
  const root = document.getElementById("frames");
  root.replaceChildren();
  if (!name || !template) return;
  const view = await api(`api/recordings/${encodeURIComponent(name)}`);
  if (call !== shown) return;  // the operator picked another recording or template meanwhile
  root.dataset.template = template.name;
  for (const frame of view.frames) {
    const params = el("div");
    paramInputs(params, template);
    const current = frame.questions.find((q) => q.template === template.name);
    const buttons = template.answers.map((answer) => {
      const b = el("button", {"data-answer": answer, class: current?.answer === answer ? "chosen" : ""}, answer);
      b.onclick = async () => {
        await api(`api/recordings/${encodeURIComponent(name)}/labels`, {method: "POST", body: JSON.stringify({
          seq: frame.seq, template: template.name, params: paramValues(params), answer})});
        for (const other of buttons) other.classList.toggle("chosen", other === b);
      };
      return b;
    });
    root.append(el("div", {class: "frame", "data-seq": String(frame.seq)},
      el("img", {loading: "lazy", src: withToken(`api/recordings/${encodeURIComponent(name)}/frames/${encodeURIComponent(frame.file)}`)}),
      `seq ${frame.seq}`, params, ...buttons));
  }
}

async function setupRecordings() {
  const picker = document.getElementById("recording");
  for (const name of await api("api/recordings")) picker.append(el("option", {value: name}, name));
  picker.onchange = showRecording;
  document.getElementById("label-template").onchange = showRecording;
  await showRecording();
}

async function main() {
  listen();
  refreshCameras();
  refreshHealth();
  setInterval(refreshCameras, 400);
  setInterval(refreshHealth, 2000);
  await setupAsk();
  await setupRecordings();
  document.body.dataset.ready = "yes";
}

main();
