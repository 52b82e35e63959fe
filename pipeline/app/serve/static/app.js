// coarchive web page: search, archive browsing and segmentation over the JSON API. Plain JS, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("coarchive-token") || "", modelId: null, banks: [], segmenters: [] };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this service needs a bearer token: enter it above");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || response.status + " " + response.statusText);
  return body;
}

function tile(src, caption, title) {
  const image = el("img", { src: src || "", alt: title || caption, title: title || "" });
  const label = el("figcaption");
  label.innerHTML = caption;
  return el("figure", {}, image, label);
}

function fmt(x, digits = 3) {
  return Number(x).toFixed(digits);
}

function escapeText(text) {
  return String(text).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
}

// ---- tabs and token ----
function selectTab(name) {
  for (const button of document.querySelectorAll(".tab")) button.classList.toggle("active", button.dataset.tab === name);
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== "tab-" + name;
  showError("");
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("coarchive-token", state.token);
  $("token-form").hidden = true;
  start();
});

// ---- search ----
function showHits(result) {
  const grid = $("search-results");
  grid.replaceChildren(
    ...result.hits.map((hit) =>
      tile(hit.thumbnail, `<b>${hit.rank}.</b> ${fmt(hit.score)}<br>${escapeText(hit.key)}`, hit.caption || hit.key)
    )
  );
  $("search-status").textContent = `${result.hits.length} hits for “${result.query}” in ${fmt(result.seconds * 1000, 0)} ms`;
  showWeakNotice(result.concept);
}

// A concept whose archive is flagged weak is probably absent or rare in the pool: say so beside its hits.
function showWeakNotice(concept) {
  const notice = $("search-notice");
  notice.hidden = !(concept && concept.weak);
  if (notice.hidden) return;
  const counted = concept.standouts == null ? "" :
    ` Only ${concept.standouts} of the ${concept.items} images in its archive (run ${concept.run}) look more like ` +
    `“${concept.name}” than images of a pool without it would.`;
  notice.textContent = `“${concept.name}” looks absent or rare in this pool.${counted} ` +
    "The images below are the closest the pool has, and may not show it.";
}

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const params = new URLSearchParams({ text: $("search-text").value, k: $("search-k").value });
  try {
    showHits(await api("/api/query?" + params));
  } catch (error) {
    showError(error.message);
  }
});

$("search-image").addEventListener("change", async () => {
  const file = $("search-image").files[0];
  if (!file) return;
  showError("");
  const form = new FormData();
  form.append("file", file);
  form.append("k", $("search-k").value);
  try {
    showHits(await api("/api/query/image", { method: "POST", body: form }));
  } catch (error) {
    showError(error.message);
  }
});

// ---- archives ----
let archiveRuns = [];

async function loadArchiveRuns() {
  archiveRuns = await api("/api/archives");
  $("archive-run").replaceChildren(
    ...archiveRuns.map((run, i) => el("option", { value: String(i), textContent: `${run.run} (${run.model_id})` }))
  );
  showArchiveConcepts();
}

function showArchiveConcepts() {
  const run = archiveRuns[Number($("archive-run").value)];
  const list = $("archive-concepts");
  if (!run) {
    list.replaceChildren(el("li", { className: "muted", textContent: "no archives in this data root" }));
    return;
  }
  list.replaceChildren(
    ...run.concepts.map((concept) => {
      const button = el("button", { type: "button", textContent: concept.concept, dataset: { slug: concept.slug } });
      if (concept.weak) button.append(" ", el("span", { className: "weak", textContent: "weak" }));
      button.addEventListener("click", () => openArchive(run, concept, button));
      return el("li", {}, button);
    })
  );
}

async function openArchive(run, concept, button) {
  showError("");
  for (const other of document.querySelectorAll("#archive-concepts button")) other.classList.remove("active");
  button.classList.add("active");
  try {
    const path = [run.model_id, run.run, concept.slug].map(encodeURIComponent).join("/");
    const archive = await api(`/api/archives/${path}?limit=100`);
    const query = archive.query;
    $("archive-title").textContent = `${query.concept} — ${archive.total} images`;
    const weak = query.weak ? ` · WEAK: ${query.weak_reason}` : "";
    $("archive-meta").textContent = `strength ${fmt(query.strength, 2)} · standouts ${query.standouts}/${query.k} · ` +
      `model ${query.model} · index ${query.index.version}${weak}`;
    $("archive-grid").replaceChildren(
      ...archive.items.map((item) => tile(item.thumbnail, `<b>${item.rank}.</b> ${fmt(item.score)}`, item.key))
    );
  } catch (error) {
    showError(error.message);
  }
}

$("archive-run").addEventListener("change", showArchiveConcepts);

// ---- segmentation ----
function updateSegmenterFields() {
  const chosen = state.segmenters.find((s) => s.name === $("seg-segmenter").value) || { takes: [], checkpoints: [] };
  const checkpoints = chosen.checkpoints || [];
  $("seg-bank-label").hidden = !chosen.takes.includes("bank");
  $("seg-checkpoint-label").hidden = !chosen.takes.includes("checkpoint") || checkpoints.length === 0;
  $("seg-checkpoint").replaceChildren(...checkpoints.map((path) => el("option", { value: path, textContent: path })));
}

async function loadSegmentOptions() {
  // only what this root can run: a segmenter that needs a bank or checkpoint is offered when the root holds one
  state.segmenters = (await api("/api/segmenters")).filter((s) => s.usable && s.ready);
  $("seg-segmenter").replaceChildren(...state.segmenters.map((s) => el("option", { value: s.name, textContent: s.name })));
  const banks = (await api("/api/banks")).filter((b) => b.model_id === state.modelId);
  $("seg-bank").replaceChildren(
    ...banks.map((b) => el("option", { value: b.run, textContent: `${b.run} (${b.concepts.length} concepts)` }))
  );
  if (state.segmenters.some((s) => s.name === "reco")) $("seg-segmenter").value = "reco";
  updateSegmenterFields();
}

function showLegend(legend) {
  const rows = [...legend].sort((a, b) => b.fraction - a.fraction);
  $("seg-legend").replaceChildren(
    ...rows.map((key) => {
      const swatch = el("span", { className: "swatch" });
      swatch.style.background = key.colour;
      const item = el(
        "li",
        { className: key.fraction > 0 ? "" : "absent", dataset: { colour: key.colour, fraction: String(key.fraction) } },
        swatch,
        el("span", { textContent: key.concept }),
        el("span", { className: "share", textContent: fmt(key.fraction * 100, 1) + "%" })
      );
      return item;
    })
  );
}

$("seg-segmenter").addEventListener("change", updateSegmenterFields);

$("segment-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const file = $("seg-file").files[0];
  if (!file) return showError("choose an image first");
  const form = new FormData();
  form.append("file", file);
  form.append("segmenter", $("seg-segmenter").value);
  if (!$("seg-bank-label").hidden) form.append("bank", $("seg-bank").value);
  if (!$("seg-checkpoint-label").hidden && $("seg-checkpoint").value) form.append("checkpoint", $("seg-checkpoint").value);
  if ($("seg-concepts").value.trim()) form.append("concepts", $("seg-concepts").value);
  form.append("crf", $("seg-crf").checked ? "true" : "false");
  form.append("saliency", $("seg-saliency").checked ? "true" : "false");
  $("seg-status").textContent = "segmenting…";
  $("seg-result").hidden = true;
  try {
    const result = await api("/api/segment", { method: "POST", body: form });
    $("seg-image").src = URL.createObjectURL(file);
    await Promise.all([setImage($("seg-overlay"), result.overlay), setImage($("seg-mask"), result.mask)]);
    showLegend(result.legend);
    $("seg-result").hidden = false;
    $("seg-status").textContent = `${result.segmenter} on ${result.width}×${result.height} px in ` +
      `${fmt(result.seconds * 1000, 0)} ms`;
    document.body.dataset.segmented = "true";
  } catch (error) {
    $("seg-status").textContent = "";
    showError(error.message);
  }
});

function setImage(image, src) {
  return new Promise((resolve) => {
    image.onload = image.onerror = () => resolve();
    image.src = src;
  });
}

// ---- start ----
async function start() {
  showError("");
  try {
    const info = await api("/api/info");
    state.modelId = info.model_id;
    const index = info.index ? `${info.index.count} images indexed (${info.index.factory})` : "no index";
    $("info").textContent = `model ${info.model} · ${index}`;
    await Promise.all([loadArchiveRuns(), loadSegmentOptions()]);
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(error.message);
  }
}

for (const button of document.querySelectorAll(".tab")) button.addEventListener("click", () => selectTab(button.dataset.tab));
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) {
  state.token = fromHash;
  sessionStorage.setItem("coarchive-token", fromHash);
  history.replaceState(null, "", location.pathname);
}
start();
