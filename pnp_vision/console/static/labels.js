// pnp-vision console: labelling a recording, one question at a time. Each card is the template's
// own view of a frame (made small on the server), its label and the model's answer; y / n (or
// 1-9 for other answer sets) label the selected card and move on, arrows move, PgUp / PgDn page.
"use strict";
(() => {
  const {api, post, el, confidence, answerBadge, confBadge, paramInputs, paramValues} = window.pnp;
  const PER_PAGE = 24;
  const root = document.getElementById("view-labels");
  const recording = el("select", {id: "recording", "aria-label": "recording"});
  const template = el("select", {id: "label-template", "aria-label": "template"});
  const params = el("span", {id: "label-params"});
  const scene = el("select", {id: "label-scene", "aria-label": "scene"}, el("option", {value: ""}, "every scene"));
  const showing = el("select", {id: "label-show", "aria-label": "which frames"});
  const counts = el("div", {id: "label-counts", class: "note"});
  const grid = el("div", {id: "label-grid"});
  const prev = el("button", {type: "button"}, "‹ previous");
  const next = el("button", {type: "button"}, "next ›");
  const pageInfo = el("span", {id: "label-page", class: "note"});
  root.append(
    el("div", {class: "label-controls"}, recording, template, params, scene, showing),
    counts,
    el("div", {class: "note"}, el("kbd", {}, "y"), " / ", el("kbd", {}, "n"), " label the selected frame and move on · ",
      el("kbd", {}, "←"), " ", el("kbd", {}, "→"), " ", el("kbd", {}, "↑"), " ", el("kbd", {}, "↓"), " move · ",
      el("kbd", {}, "PgUp"), " ", el("kbd", {}, "PgDn"), " pages · the tile is what the model sees"),
    el("div", {class: "pager"}, prev, pageInfo, next),
    grid);

  let view = null;       // the page shown (the server's answer)
  let page = 0;
  let selected = 0;
  let call = 0;          // the latest load: an earlier one still loading must not draw
  let refresh = null;

  const question = () => window.pnp.templates.find((t) => t.name === template.value);

  function setShowOptions() {
    const keep = showing.value;
    showing.replaceChildren(el("option", {value: "all"}, "every frame"),
      el("option", {value: "unlabelled"}, "unlabelled"),
      el("option", {value: "disagree"}, "disagreeing with the model"));
    for (const answer of question()?.answers || []) showing.append(el("option", {value: answer}, `labelled ${answer}`));
    if ([...showing.options].some((o) => o.value === keep)) showing.value = keep;
  }

  function modelPart(frame) {
    const part = el("span", {class: "model"});
    if (!frame.model) {
      part.append("model: …");
      return part;
    }
    const m = frame.model;
    const c = confidence(m);
    part.append("model: ", answerBadge(m.answer, c.cls === "confident"), " ", confBadge(m),
      ` ${m.probability.toFixed(2)}`);
    if (frame.label !== null && frame.label !== m.answer) part.append(" ", el("span", {class: "disagree"}, "≠ label"));
    return part;
  }

  function card(frame, index) {
    const answers = question().answers;
    const buttons = answers.map((answer, i) => {
      const b = el("button", {type: "button", "data-answer": answer, class: frame.label === answer ? "chosen" : null,
        title: answer === "YES" ? "y" : answer === "NO" ? "n" : String(i + 1)}, answer);
      b.onclick = () => { select(index); label(answer); };
      return b;
    });
    const url = `api/recordings/${encodeURIComponent(view.name)}/frames/${frame.seq}/view.jpg?template=${encodeURIComponent(view.template)}`;
    const node = el("div", {class: "card", "data-seq": String(frame.seq), "data-label": frame.label ?? ""},
      el("img", {src: url, alt: `seq ${frame.seq}`, loading: "lazy"}),
      el("div", {class: "row"}, el("strong", {}, `seq ${frame.seq}`), frame.scene ? el("span", {class: "note"}, frame.scene) : null),
      el("div", {class: "row"}, "label: ", ...buttons),
      el("div", {class: "row model-row"}, modelPart(frame)));
    node.onclick = (event) => { if (event.target.tagName !== "BUTTON") select(index); };
    return node;
  }

  function renderCounts(c) {
    const parts = Object.entries(c.labelled).map(([answer, n]) => `${answer} ${n}`);
    counts.replaceChildren(el("b", {}, "labelled"), `${parts.join(" · ")} · `, el("b", {}, "left"), `${c.left} of ${c.total}`,
      ` · model answered ${c.predicted} of ${c.total} · disagreeing ${c.disagree}`);
    counts.dataset.left = String(c.left);
  }

  async function load(keepSelection = false) {
    const mine = ++call;
    clearTimeout(refresh);
    const t = question();
    if (!recording.value || !t) { grid.replaceChildren(); return; }
    const missing = Object.entries(paramValues(params)).filter(([, v]) => v === "").map(([k]) => k);
    if (missing.length) {  // the question is not whole yet: nothing to ask the console
      grid.replaceChildren();
      counts.textContent = `fill in ${missing.join(", ")} to label this question`;
      return;
    }
    const query = new URLSearchParams({template: t.name, params: JSON.stringify(paramValues(params)),
      show: showing.value, scene: scene.value, page: String(page), per_page: String(PER_PAGE)});
    let got;
    try {
      got = await api(`api/recordings/${encodeURIComponent(recording.value)}?${query}`);
    } catch (e) {
      if (mine === call) counts.textContent = `error: ${e.message}`;
      return;
    }
    if (mine !== call) return;
    view = got;
    page = got.page;
    const scenes = ["", ...got.scenes];
    if (scene.options.length !== scenes.length) {
      const keep = scene.value;
      scene.replaceChildren(...scenes.map((s) => el("option", {value: s}, s || "every scene")));
      scene.value = scenes.includes(keep) ? keep : "";
    }
    renderCounts(got.counts);
    pageInfo.textContent = `page ${got.page + 1} of ${got.pages} · ${got.matching} frames`;
    prev.disabled = got.page === 0;
    next.disabled = got.page >= got.pages - 1;
    grid.replaceChildren(...got.frames.map(card));
    grid.dataset.template = got.template;
    grid.dataset.page = String(got.page);
    select(keepSelection ? Math.min(selected, got.frames.length - 1) : 0);
    if (got.counts.predicted < got.counts.total) refresh = setTimeout(updateModel, 1500);
  }

  // The model's answers arrive in the background: update them in place, images untouched.
  async function updateModel() {
    if (!view || window.pnp.view !== "labels") { refresh = setTimeout(updateModel, 1500); return; }
    const mine = call;
    const query = new URLSearchParams({template: view.template, params: JSON.stringify(view.params),
      show: showing.value, scene: scene.value, page: String(page), per_page: String(PER_PAGE)});
    let got;
    try { got = await api(`api/recordings/${encodeURIComponent(view.name)}?${query}`); } catch { return; }
    if (mine !== call) return;
    renderCounts(got.counts);
    for (const frame of got.frames) {
      const node = grid.querySelector(`.card[data-seq="${frame.seq}"] .model-row`);
      if (node) node.replaceChildren(modelPart(frame));
      const old = view.frames.find((f) => f.seq === frame.seq);
      if (old) old.model = frame.model;
    }
    if (got.counts.predicted < got.counts.total) refresh = setTimeout(updateModel, 1500);
  }

  function select(index) {
    const cards = grid.querySelectorAll(".card");
    if (!cards.length) return;
    selected = Math.max(0, Math.min(index, cards.length - 1));
    cards.forEach((c, i) => c.classList.toggle("selected", i === selected));
    cards[selected].scrollIntoView({block: "nearest"});
  }

  async function label(answer) {
    const frame = view?.frames[selected];
    if (!frame) return;
    const node = grid.querySelectorAll(".card")[selected];
    const got = await post(`api/recordings/${encodeURIComponent(view.name)}/labels`, {
      seq: frame.seq, template: view.template, params: view.params, answer});
    frame.label = got.answer;
    node.dataset.label = got.answer;
    for (const b of node.querySelectorAll("button[data-answer]")) b.classList.toggle("chosen", b.dataset.answer === got.answer);
    node.querySelector(".model-row").replaceChildren(modelPart(frame));
    renderCounts(got.counts);
    if (selected < view.frames.length - 1) select(selected + 1);
  }

  function perRow() {
    const cards = [...grid.querySelectorAll(".card")];
    if (!cards.length) return 1;
    return Math.max(1, cards.filter((c) => c.offsetTop === cards[0].offsetTop).length);
  }

  document.addEventListener("keydown", (event) => {
    if (window.pnp.view !== "labels" || !view || event.ctrlKey || event.metaKey || event.altKey) return;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) return;
    const answers = view.answers;
    const key = event.key;
    let answer = null;
    if (key === "y" && answers.includes("YES")) answer = "YES";
    else if (key === "n" && answers.includes("NO")) answer = "NO";
    else if (/^[1-9]$/.test(key) && Number(key) <= answers.length) answer = answers[Number(key) - 1];
    if (answer) { event.preventDefault(); label(answer); return; }
    const moves = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow(), ArrowUp: -perRow()};
    if (key in moves) {
      event.preventDefault();
      const to = selected + moves[key];
      if (to >= view.frames.length && !next.disabled) { page += 1; load(); }
      else if (to < 0 && !prev.disabled) { page -= 1; load().then(() => select(view.frames.length - 1)); }
      else select(to);
    } else if (key === "PageDown" && !next.disabled) { event.preventDefault(); page += 1; load(); }
    else if (key === "PageUp" && !prev.disabled) { event.preventDefault(); page -= 1; load(); }
  });

  const restart = () => { page = 0; load(); };
  prev.onclick = () => { page -= 1; load(); };
  next.onclick = () => { page += 1; load(); };
  recording.onchange = () => { scene.value = ""; restart(); };
  template.onchange = () => { paramInputs(params, question()); setShowOptions(); restart(); };
  params.onchange = restart;
  scene.onchange = restart;
  showing.onchange = restart;

  (async () => {
    for (const t of window.pnp.templates) template.append(el("option", {value: t.name}, t.name));
    paramInputs(params, question());
    setShowOptions();
    let names = [];
    try { names = await api("api/recordings"); } catch (e) { counts.textContent = `error: ${e.message}`; }
    for (const name of names) recording.append(el("option", {value: name}, name));
    if (!names.length) counts.textContent = "no recordings in the console's --recordings folder";
    await load();
    root.dataset.ready = "yes";
  })();
})();
