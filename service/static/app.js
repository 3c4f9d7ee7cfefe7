// Wires the page: model picker, draw/reconstruct, anomaly score, latent map, interpolation,
// sampling. Two rules hold everywhere: a panel never shows a result that no longer belongs to
// its inputs (a model or class switch, a refused upload and a failed call clear or recompute
// it), and an answer that arrives after its panel moved on is dropped.

import { ApiError, MULTIPART_OVERHEAD, api, apiKey, pngSource } from "./api.js";
import { DrawPad, decodeImage } from "./drawpad.js";
import { drawHistogram, formatScore } from "./histogram.js";
import { LatentMap, PALETTE } from "./latentmap.js";

const $ = (id) => document.getElementById(id);
const started = performance.now();

const state = {
  models: [],
  model: null, // the info of the selected model (an item of GET /models)
  label: null, // the class every call uses, for conditional models
  limits: null, // the server's request limits (GET /models), to refuse before sending
  generation: 0, // bumped by every model switch: older answers are dropped
  labelGeneration: 0, // bumped by every class switch: older answers that used the class are dropped
  usable: false,
  drawingLatent: null, // the drawing's latent under the current model, for the map's diamond
  scored: null, // the image last scored, so a moved threshold can judge it again
};

const imageSize = () => [state.model.image.height, state.model.image.width];

// --- messages ------------------------------------------------------------------------------------
// Page-level messages (models, API key) in the notice under the top bar; a panel's own errors in
// the panel. Either stays until dismissed (its button, or Esc), until the next success there, or
// until the model changes: no timer hides a message while it is still true.

function say(box, text) {
  box.querySelector(".message").textContent = text;
  box.hidden = false;
}

function unsay(box) {
  box.hidden = true;
  box.querySelector(".message").textContent = "";
}

const panelMessage = (card) => $(card).querySelector(".card-message");

function userMessage(error) {
  if (error.status === 401) {
    return apiKey.get()
      ? "The server did not accept this API key. Check it and type it again in the API key field at the top."
      : "This server needs an API key. Type it in the API key field at the top: the page loads as soon as the server accepts it.";
  }
  if (error.status === 413) return `The server refused it as too large: ${error.detail || error.title}.`;
  if (error.status === 429 || error.status === 503) {
    return `The server is busy (${error.detail || error.title}). Try again in a moment.`;
  }
  return error.message;
}

function showError(card, error) {
  const needsKey = error.status === 401;
  $("api-key").classList.toggle("needed", needsKey);
  $("api-key").setAttribute("aria-invalid", String(needsKey));
  if (needsKey || card === null) say($("notice"), userMessage(error));
  else say(panelMessage(card), userMessage(error));
}

function setStatus(card, text) {
  const status = $(card).querySelector(".card-status");
  if (status) status.textContent = text;
}

document.addEventListener("click", (event) => {
  const button = event.target.closest(".dismiss");
  if (button) unsay(button.parentElement);
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented) return;
  for (const box of document.querySelectorAll(".card-message, .notice")) unsay(box);
});

// --- panels at work ----------------------------------------------------------------------------------

const tickets = {};

// Runs one call of a panel: busy while it runs; `work(fresh)` renders only while fresh() holds
// (no newer call of the same kind, `key`, no model switch since, nor a class switch unless the
// call does not depend on the class). Returns whether it succeeded.
async function run(card, work, { key = card, usesClass = true } = {}) {
  const id = (tickets[key] = (tickets[key] ?? 0) + 1);
  const [generation, labelGeneration] = [state.generation, state.labelGeneration];
  const fresh = () =>
    tickets[key] === id &&
    generation === state.generation &&
    (!usesClass || labelGeneration === state.labelGeneration);
  const element = $(card);
  element.dataset.pending = Number(element.dataset.pending ?? 0) + 1;
  element.classList.add("busy");
  element.setAttribute("aria-busy", "true");
  try {
    await work(fresh);
    if (fresh()) {
      unsay(panelMessage(card));
      unsay($("notice"));
      $("api-key").classList.remove("needed"); // the server took this call: the key is fine
      $("api-key").removeAttribute("aria-invalid");
    }
    return true;
  } catch (error) {
    if (fresh()) showError(card, error);
    if (!(error instanceof ApiError) && !(error instanceof UserError)) console.warn(error);
    return false;
  } finally {
    element.dataset.pending = Number(element.dataset.pending) - 1;
    if (element.dataset.pending === "0") {
      element.classList.remove("busy");
      element.removeAttribute("aria-busy");
      setStatus(card, "");
    }
  }
}

// --- controls before the models load --------------------------------------------------------------

function setUsable(usable) {
  state.usable = usable;
  for (const control of document.querySelectorAll("main button, main input, main select, #model-select")) {
    if (control.id === "interp-slider") control.disabled = !usable || frames.length === 0;
    else control.disabled = !usable;
  }
  for (const pad of [drawPad, padA, padB]) pad.setEnabled(usable);
  latentMap.setEnabled(usable);
  document.body.classList.toggle("loading", !usable);
}

// --- model and class ---------------------------------------------------------------------------------

function describe(model) {
  const parts = [
    model.family.toUpperCase().replace("_", "-"),
    model.architecture,
    `latent ${model.latent_dim}`,
    model.dataset?.name,
    model.provider,
  ];
  return parts.filter(Boolean).join(" · ");
}

function renderLabelPicker(model) {
  const bar = $("label-bar");
  const picker = $("label-picker");
  picker.replaceChildren();
  bar.hidden = !model.conditional;
  state.label = model.conditional ? 0 : null;
  if (!model.conditional) return;
  model.classes.forEach((name, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    button.setAttribute("role", "radio");
    button.dataset.label = index;
    button.addEventListener("click", () => chooseLabel(index));
    picker.append(button);
  });
  markLabel();
}

// A radio group: one tab stop (the chosen class); arrows, Home and End choose another.
function markLabel() {
  for (const button of $("label-picker").children) {
    const chosen = Number(button.dataset.label) === state.label;
    button.setAttribute("aria-checked", String(chosen));
    button.tabIndex = chosen ? 0 : -1;
  }
}

function chooseLabel(index, focus = false) {
  const buttons = $("label-picker").children;
  if (index === state.label) return;
  state.label = index;
  state.labelGeneration += 1;
  markLabel();
  if (focus) buttons[index].focus();
  refreshAll();
}

$("label-picker").addEventListener("keydown", (event) => {
  const count = $("label-picker").children.length;
  const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
  let index = null;
  if (event.key in moves) index = (state.label + moves[event.key] + count) % count;
  else if (event.key === "Home") index = 0;
  else if (event.key === "End") index = count - 1;
  if (index === null) return;
  event.preventDefault();
  chooseLabel(index, true);
});

function renderLegend(classes) {
  const legend = $("map-legend");
  legend.replaceChildren();
  (classes ?? []).forEach((name, index) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.setAttribute("aria-hidden", "true");
    swatch.style.background = PALETTE[index % PALETTE.length];
    item.append(swatch, name);
    legend.append(item);
  });
}

async function selectModel(name) {
  state.model = state.models.find((m) => m.name === name);
  state.generation += 1;
  state.drawingLatent = null;
  $("model-summary").textContent = describe(state.model);
  renderLabelPicker(state.model);
  for (const card of ["encode-card", "score-card", "map-card", "interpolate-card", "sample-card"]) {
    unsay(panelMessage(card));
  }
  // Every panel is cleared, then recomputed from what the user gave it; the picked point is
  // dropped: it is a point of the old model's map.
  clearEncode();
  clearScore();
  clearPick();
  latentMap.setReference(null);
  const hadFrames = frames.length > 0;
  clearFrames();
  $("sample-grid").replaceChildren();
  const work = [loadMap(), reconstructDrawing(), sample()];
  if (hadFrames && !padA.isEmpty && !padB.isEmpty) work.push(interpolate());
  await Promise.all(work);
}

// --- draw and reconstruct --------------------------------------------------------------------------

function clearEncode() {
  $("reconstruction").removeAttribute("src");
  $("latent-values").replaceChildren();
  $("latent-values").removeAttribute("tabindex");
  $("latent-dim").textContent = "";
  $("reconstruction-mse").textContent = "";
  state.drawingLatent = null;
  if (latentMap.markers.drawing) latentMap.setMarker("drawing", null);
}

function renderLatent(latent) {
  const list = $("latent-values");
  const scale = Math.max(3, ...latent.map(Math.abs));
  list.replaceChildren(
    ...latent.map((value, i) => {
      const item = document.createElement("li");
      const fill = document.createElement("span");
      fill.className = value < 0 ? "fill negative" : "fill";
      fill.style.width = `${(Math.abs(value) / scale) * 50}%`;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.setAttribute("aria-hidden", "true");
      bar.append(fill);
      const dim = Object.assign(document.createElement("span"), { className: "dim", textContent: `z${i}` });
      const number = Object.assign(document.createElement("span"), {
        className: "value",
        textContent: value.toFixed(3),
      });
      item.dataset.value = value;
      item.append(dim, bar, number);
      return item;
    }),
  );
  $("latent-dim").textContent = `${latent.length} dimensions`;
  list.tabIndex = 0; // it may scroll: keyboards scroll it too
}

function placeDrawingMarker() {
  if (state.drawingLatent && latentMap.model === state.model.name) {
    latentMap.setMarker("drawing", latentMap.toPoint(state.drawingLatent));
  }
}

// The drawing pad changed (or the model or class did): reconstruct and score what it holds.
async function reconstructDrawing() {
  if (!state.model) return;
  const image = await drawPad.toBlob(...imageSize());
  if (image === null) {
    padEmptied(drawPad); // and answers still on the way are dropped
    return;
  }
  const upload = drawPad.upload;
  if (upload && image.size > 1_000_000) setStatus("encode-card", `Sending ${upload.name} (${megabytes(image.size)})…`);
  await Promise.all([
    scoreImage(image),
    run("encode-card", async (fresh) => {
      const model = state.model;
      try {
        const result = await api.reconstruct(model.name, image, state.label);
        if (!fresh()) return;
        $("reconstruction").src = pngSource(result.images[0]);
        $("reconstruction-mse").textContent = `MSE ${result.mse[0].toFixed(4)}`;
        renderLatent(result.latents[0]);
        state.drawingLatent = result.latents[0];
        placeDrawingMarker();
      } catch (error) {
        if (!fresh()) throw error;
        clearEncode(); // nothing stale stays beside the message
        if (error instanceof ApiError && error.refusedInput && upload && drawPad.upload === upload) {
          drawPad.clear(false);
          throw new UserError(refusal(upload, error));
        }
        throw error;
      }
    }),
  ]);
}

// --- uploads -------------------------------------------------------------------------------------------

// A message for the person at the page: what to change, not a failure of the page.
class UserError extends Error {}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

// Why the server refused an uploaded file, in the terms of the file.
function refusal(file, error) {
  const name = file.name || "The image";
  if (error.status === 413 && state.limits) {
    return `${name} (${megabytes(file.size)}) is too large for this server, which takes files up to ${megabytes(
      state.limits.max_body_bytes - MULTIPART_OVERHEAD,
    )}. Choose a smaller file.`;
  }
  return `${name} was not accepted: ${error.detail || error.title}.`;
}

// Checks a file against the server's limits before anything is sent, and shows it on the pad.
async function readUpload(pad, file) {
  const name = file.name || "The pasted image";
  if (file.type && !file.type.startsWith("image/")) {
    throw new UserError(`${name} is not an image (it is ${file.type}); choose a PNG or JPEG file.`);
  }
  const limits = state.limits;
  if (limits && file.size + MULTIPART_OVERHEAD > limits.max_body_bytes) {
    throw new UserError(
      `${name} is ${megabytes(file.size)}; this server takes files up to ` +
        `${megabytes(limits.max_body_bytes - MULTIPART_OVERHEAD)}. Choose a smaller file, or save it smaller.`,
    );
  }
  const image = await decodeImage(file).catch((error) => {
    throw new UserError(`${error.message}; choose a PNG or JPEG file.`);
  });
  if (!image.naturalWidth || !image.naturalHeight) {
    throw new UserError(`${name} has no size in pixels; choose a PNG or JPEG file.`);
  }
  const pixels = image.naturalWidth * image.naturalHeight;
  if (limits && pixels > limits.max_image_pixels) {
    const side = Math.floor(Math.sqrt(limits.max_image_pixels));
    throw new UserError(
      `${name} is ${image.naturalWidth} × ${image.naturalHeight} pixels; this server takes images up to ` +
        `${(limits.max_image_pixels / 1e6).toFixed(1)} million pixels (${side} × ${side}). Scale it down first.`,
    );
  }
  pad.showUpload(file, image);
}

// A file for a pad, from its Upload button, a drop or a paste. A refused one clears the pad
// and every result that came from it, and says why in the panel.
async function takeFile(pad, file) {
  if (!state.usable || !file) return;
  const card = pad === drawPad ? "encode-card" : "interpolate-card";
  if (file.size > 1_000_000) setStatus(card, `Reading ${file.name || "the image"} (${megabytes(file.size)})…`);
  await run(card, async (fresh) => {
    try {
      await readUpload(pad, file);
    } catch (error) {
      if (fresh()) padEmptied(pad);
      throw error;
    }
  }, { key: `${card}-upload` });
}

// A pad emptied without a new input: what came from it goes too.
function padEmptied(pad) {
  pad.clear(false);
  if (pad === drawPad) {
    clearEncode();
    clearScore();
    for (const key of ["encode-card", "score-card"]) tickets[key] = (tickets[key] ?? 0) + 1;
  } else {
    clearFrames();
    tickets["interpolate-card"] = (tickets["interpolate-card"] ?? 0) + 1;
  }
}

function wireUpload(buttonId, inputId, pad) {
  $(buttonId).addEventListener("click", () => $(inputId).click());
  $(inputId).addEventListener("change", async (event) => {
    const [file] = event.target.files;
    event.target.value = "";
    await takeFile(pad, file);
  });
}

// Paste an image: onto the focused pad, else the drawing pad.
document.addEventListener("paste", (event) => {
  const target = document.activeElement;
  if (target?.matches?.("input, textarea, select")) return;
  const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
  if (!file) return;
  event.preventDefault();
  const pad = [padA, padB].find((p) => p.canvas === target) ?? drawPad;
  takeFile(pad, file);
});
// A file dropped beside the pads is not opened in place of the page.
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => event.preventDefault());

// --- anomaly score -----------------------------------------------------------------------------------

function clearScore() {
  const calibration = state.model?.calibration ?? null;
  $("score-empty").hidden = calibration !== null || state.model === null;
  $("score-histogram").hidden = calibration === null;
  const verdict = $("score-verdict");
  verdict.className = "verdict";
  verdict.textContent = calibration ? "Draw or upload an image" : "No calibration";
  for (const id of ["score-value", "score-percentile"]) $(id).textContent = "–";
  $("score-threshold").textContent = calibration ? formatScore(calibration.score.threshold) : "–";
  $("score-corrected").hidden = true;
  $("score-name").textContent = calibration
    ? `${calibration.score.name} (${calibration.score.unit}): ${calibration.score.description}. ` +
      `Histogram: the ${calibration.images.toLocaleString("en")} ${calibration.split} images; dashed: the threshold, ` +
      `their ${Math.round(calibration.score.threshold_quantile * 100)}th percentile.`
    : "";
  if (calibration) drawHistogram($("score-histogram"), calibration.score);
  state.scored = null;
  for (const id of ["image-threshold", "pixel-threshold"]) {
    Object.assign($(id), { value: 1, disabled: !calibration?.pixel });
  }
  $("thresholds-reset").disabled = !calibration?.pixel;
  showThresholds();
  clearOverlay("Where: draw or upload an image");
}

// --- where: the pixel map over the image, and thresholds the user can move ----------------------

// The sliders scale the calibrated thresholds (1 = calibrated); null where one was not moved.
function chosenThresholds() {
  const calibration = state.model?.calibration;
  if (!calibration?.pixel) return {};
  const factor = (id) => Number($(id).value);
  return {
    image: factor("image-threshold") === 1 ? null : factor("image-threshold") * calibration.score.threshold,
    pixel: factor("pixel-threshold") === 1 ? null : factor("pixel-threshold") * calibration.pixel.threshold,
  };
}

function showThresholds() {
  const calibration = state.model?.calibration;
  const chosen = chosenThresholds();
  $("image-threshold-value").textContent = calibration?.pixel
    ? `${formatScore(chosen.image ?? calibration.score.threshold)} ${calibration.score.unit}`
    : "–";
  $("pixel-threshold-value").textContent = calibration?.pixel
    ? `${(chosen.pixel ?? calibration.pixel.threshold).toFixed(2)} ${calibration.pixel.unit} per pixel`
    : "–";
}

function clearOverlay(text) {
  const canvas = $("score-overlay");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  $("score-where-text").textContent = text;
  canvas.setAttribute("aria-label", text);
}

// The image as the pad shows it (the server reads it the same way), the heatmap screened over it.
async function drawOverlay(heatmapBase64, count, threshold, unit) {
  const heatmap = new Image();
  heatmap.src = pngSource(heatmapBase64);
  await heatmap.decode();
  const canvas = $("score-overlay");
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.globalCompositeOperation = "source-over";
  context.drawImage(drawPad.canvas, 0, 0, canvas.width, canvas.height);
  context.globalCompositeOperation = "screen";
  context.drawImage(heatmap, 0, 0, canvas.width, canvas.height);
  context.globalCompositeOperation = "source-over";
  const text =
    count === 0
      ? `Where: no pixel above ${threshold.toFixed(2)} ${unit}`
      : `Where: ${count} pixel${count === 1 ? "" : "s"} above ${threshold.toFixed(2)} ${unit} (bright)`;
  $("score-where-text").textContent = text;
  canvas.setAttribute("aria-label", text);
}

let rescoreTimer = null;
function thresholdMoved() {
  showThresholds();
  clearTimeout(rescoreTimer);
  rescoreTimer = setTimeout(() => state.scored && scoreImage(state.scored), 80);
}
$("image-threshold").addEventListener("input", thresholdMoved);
$("pixel-threshold").addEventListener("input", thresholdMoved);
$("thresholds-reset").addEventListener("click", () => {
  for (const id of ["image-threshold", "pixel-threshold"]) $(id).value = 1;
  thresholdMoved();
});

const verdictText = (anomalous) => (anomalous ? "Anomalous" : "Normal");
const percent = (value) => `${value.toFixed(1)} %`;

async function scoreImage(image) {
  const model = state.model;
  if (!model.calibration) return;
  await run("score-card", async (fresh) => {
    let result;
    try {
      result = await api.score(model.name, image, Boolean(model.calibration.pixel), chosenThresholds());
    } catch (error) {
      if (fresh()) {
        clearScore();
        $("score-verdict").textContent = "Not scored";
      }
      throw error;
    }
    if (!fresh()) return;
    state.scored = image;
    const verdict = $("score-verdict");
    verdict.className = `verdict ${result.anomalous[0] ? "anomalous" : "normal"}`;
    verdict.textContent = verdictText(result.anomalous[0]);
    $("score-value").textContent = `${formatScore(result.scores[0])} ${result.unit}`;
    $("score-percentile").textContent = percent(result.percentiles[0]);
    $("score-threshold").textContent = formatScore(result.thresholds[0]);
    drawHistogram($("score-histogram"), model.calibration.score, result.scores[0]);
    const maps = result.maps;
    if (maps) {
      await drawOverlay(maps.heatmaps[0], maps.anomalous_pixels[0], maps.pixel_thresholds[0], maps.unit);
    }
    const corrected = result.corrected;
    $("score-corrected").hidden = !corrected;
    if (corrected) {
      $("score-corrected").textContent =
        `Corrected for the image's own complexity (${corrected.score}): ` +
        `${formatScore(corrected.scores[0])} ${corrected.unit}, percentile ` +
        `${percent(corrected.percentiles[0])}: ${verdictText(corrected.anomalous[0]).toLowerCase()}.`;
    }
  });
}

// --- latent map ----------------------------------------------------------------------------------------

async function loadMap() {
  const model = state.model;
  await run("map-card", async (fresh) => {
    let reference = null;
    try {
      reference = await api.reference(model.name);
    } catch (error) {
      if (error.status !== 404) throw error;
    }
    if (!fresh()) return;
    latentMap.setReference(reference, model.name);
    clearPick();
    $("map-empty").hidden = reference !== null;
    $("map-help").hidden = reference === null;
    $("map-projection").textContent =
      reference?.projection === "pca" ? "first two principal components" : "the two latent dimensions";
    renderLegend(reference ? model.classes ?? classNames(reference) : []);
    placeDrawingMarker();
  }, { key: "map-reference", usesClass: false });
}

const classNames = (reference) =>
  Array.from({ length: Math.max(...reference.labels) + 1 }, (_, i) => String(i));

const pointText = (point) => `(${point[0].toFixed(2)}, ${point[1].toFixed(2)})`;

function clearPick() {
  $("map-decoded").removeAttribute("src");
  $("map-point").textContent = "Click the map";
  delete $("map-point").dataset.latent;
  tickets["map-card"] = (tickets["map-card"] ?? 0) + 1;
}

async function decodePoint(point, latent) {
  await run("map-card", async (fresh) => {
    const result = await api.decode(state.model.name, latent, state.label);
    if (!fresh()) return;
    $("map-decoded").src = pngSource(result.images[0]);
    $("map-point").textContent = `Decoded ${pointText(point)}`;
    $("map-point").dataset.latent = JSON.stringify(latent);
    revealOnSmallScreens($("map-result"));
  });
}

// On a narrow screen the decoded image sits below the map: bring it into view after a pick.
function revealOnSmallScreens(element) {
  if (!window.matchMedia("(max-width: 700px)").matches) return;
  const rect = element.getBoundingClientRect();
  if (rect.bottom > window.innerHeight || rect.top < 0) element.scrollIntoView({ block: "nearest" });
}

// --- interpolation -----------------------------------------------------------------------------------

let frames = [];

function clearFrames() {
  frames = [];
  $("interp-frame").removeAttribute("src");
  $("interp-strip").replaceChildren();
  Object.assign($("interp-slider"), { max: 0, value: 0, disabled: true });
  $("interp-position").textContent = "";
}

function showFrame(index) {
  $("interp-frame").src = pngSource(frames[index]);
  $("interp-position").textContent = `${index + 1} / ${frames.length}`;
  $("interp-slider").setAttribute("aria-valuetext", `frame ${index + 1} of ${frames.length}`);
  [...$("interp-strip").children].forEach((button, i) => {
    button.classList.toggle("current", i === index);
    button.setAttribute("aria-pressed", String(i === index));
  });
}

// A whole number in [low, high] from a number field, or null after marking the field.
function wholeNumber(input, low, high, what) {
  const text = input.value.trim();
  const error = $(input.getAttribute("aria-describedby"));
  const ok = /^\d+$/.test(text) && BigInt(text) >= BigInt(low) && BigInt(text) <= BigInt(high);
  input.setAttribute("aria-invalid", String(!ok));
  error.hidden = ok;
  error.textContent = ok ? "" : `${what} must be a whole number from ${low} to ${high}`;
  return ok ? text : null;
}

const SEED_MAX = "9223372036854775807"; // the service's seeds: 0 .. 2^63 - 1

async function interpolate() {
  if (!state.model) return;
  const maxSteps = state.limits?.max_steps ?? 64;
  const steps = wholeNumber($("interp-steps"), 2, maxSteps, "Steps");
  if (steps === null) {
    clearFrames();
    $("interp-steps").focus();
    return;
  }
  const [start, end] = await Promise.all([padA.toBlob(...imageSize()), padB.toBlob(...imageSize())]);
  await run("interpolate-card", async (fresh) => {
    if (start === null || end === null) {
      clearFrames();
      throw new UserError(
        start === null && end === null
          ? "Draw or upload a start and an end image first"
          : `Draw or upload ${start === null ? "a start" : "an end"} image first`,
      );
    }
    const method = $("interp-method").value;
    let result;
    try {
      result = await api.interpolate(state.model.name, start, end, steps, method, state.label);
    } catch (error) {
      if (fresh()) clearFrames();
      throw error;
    }
    if (!fresh()) return;
    frames = result.images;
    $("interp-strip").replaceChildren(
      ...frames.map((frame, i) => {
        const button = Object.assign(document.createElement("button"), { type: "button", className: "frame" });
        button.setAttribute("aria-label", `Frame ${i + 1}`);
        const img = Object.assign(document.createElement("img"), { src: pngSource(frame), alt: "" });
        img.className = "pixel";
        button.append(img);
        button.addEventListener("click", () => {
          $("interp-slider").value = i;
          showFrame(i);
        });
        return button;
      }),
    );
    Object.assign($("interp-slider"), { max: frames.length - 1, value: 0, disabled: !state.usable });
    showFrame(0);
  });
}

// An end pad changed: the frames no longer belong to it; recompute them if both ends are there.
function padChanged() {
  const hadFrames = frames.length > 0;
  clearFrames();
  tickets["interpolate-card"] = (tickets["interpolate-card"] ?? 0) + 1;
  if (hadFrames && !padA.isEmpty && !padB.isEmpty) interpolate();
}

// --- sampling ------------------------------------------------------------------------------------------

async function sample() {
  if (!state.model) return;
  const seed = wholeNumber($("sample-seed"), 0, SEED_MAX, "The seed");
  if (seed === null) {
    $("sample-grid").replaceChildren();
    return;
  }
  const temperature = Number($("sample-temperature").value);
  await run("sample-card", async (fresh) => {
    let result;
    try {
      result = await api.sample(state.model.name, 8, seed, temperature, state.label);
    } catch (error) {
      if (fresh()) $("sample-grid").replaceChildren();
      throw error;
    }
    if (!fresh()) return;
    $("sample-grid").replaceChildren(
      ...result.images.map((image, i) => {
        const img = Object.assign(document.createElement("img"), { src: pngSource(image), alt: `sample ${i + 1}` });
        img.className = "pixel";
        return img;
      }),
    );
  });
}

// --- wiring ----------------------------------------------------------------------------------------------

// The class changed: every panel again, with the same inputs (the picked point stays: it is a
// point of this model's map).
function refreshAll() {
  const work = [reconstructDrawing(), sample()];
  const pick = latentMap.markers.pick;
  if (pick) work.push(decodePoint(pick, latentMap.toLatent(pick)));
  else clearPick();
  if (frames.length && !padA.isEmpty && !padB.isEmpty) work.push(interpolate());
  else clearFrames();
  return Promise.all(work);
}

const drawPad = new DrawPad($("draw-pad"), {
  onChange: () => reconstructDrawing(),
  onFile: (file) => takeFile(drawPad, file),
});
const padA = new DrawPad($("pad-a"), { strokeRatio: 0.085, onChange: padChanged, onFile: (f) => takeFile(padA, f) });
const padB = new DrawPad($("pad-b"), { strokeRatio: 0.085, onChange: padChanged, onFile: (f) => takeFile(padB, f) });
const latentMap = new LatentMap($("latent-map"), {
  onPick: decodePoint,
  onCursor: (point) => {
    if (point) $("map-point").textContent = `Cursor at ${pointText(point)}: Enter decodes it`;
    else if (!$("map-decoded").getAttribute("src")) $("map-point").textContent = "Click the map";
  },
});

$("draw-clear").addEventListener("click", () => drawPad.clear());
wireUpload("draw-upload-button", "draw-upload", drawPad);
$("pad-a-clear").addEventListener("click", () => padA.clear());
$("pad-b-clear").addEventListener("click", () => padB.clear());
wireUpload("pad-a-upload-button", "pad-a-upload", padA);
wireUpload("pad-b-upload-button", "pad-b-upload", padB);
$("interp-form").addEventListener("submit", (event) => {
  event.preventDefault();
  interpolate();
});
$("interp-slider").addEventListener("input", (event) => showFrame(Number(event.target.value)));
$("sample-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sample();
});
$("sample-random").addEventListener("click", () => {
  $("sample-seed").value = Math.floor(Math.random() * 100000);
  sample();
});
$("sample-temperature").addEventListener("input", (event) => {
  const text = Number(event.target.value).toFixed(1);
  $("sample-temperature-value").textContent = text;
  event.target.setAttribute("aria-valuetext", text);
});
$("model-select").addEventListener("change", (event) => selectModel(event.target.value));

// --- start, and the API key -------------------------------------------------------------------------------

let attempt = 0;

async function start() {
  const mine = (attempt += 1);
  $("model-summary").textContent = "Loading the models…";
  let listing;
  try {
    listing = await api.models();
  } catch (error) {
    if (mine !== attempt) return;
    $("model-summary").textContent =
      error.status === 401 ? "Waiting for an API key: the models load once the server accepts it" : "No models loaded";
    showError(null, error);
    return;
  }
  if (mine !== attempt) return;
  state.models = listing.models;
  state.limits = listing.limits ?? null;
  if (state.limits) $("interp-steps").max = state.limits.max_steps;
  const select = $("model-select");
  select.replaceChildren(
    ...listing.models.map((m) => Object.assign(document.createElement("option"), { value: m.name, textContent: m.name })),
  );
  if (!listing.models.length) {
    $("model-summary").textContent = "No models loaded";
    say($("notice"), "The server has no models loaded.");
    return;
  }
  $("api-key").classList.remove("needed");
  $("api-key").removeAttribute("aria-invalid");
  unsay($("notice"));
  const initial = listing.models.some((m) => m.name === listing.default) ? listing.default : listing.models[0].name;
  select.value = initial;
  setUsable(true);
  document.body.dataset.usableMs = Math.round(performance.now() - started);
  await selectModel(initial);
  document.body.dataset.readyMs = Math.round(performance.now() - started);
  document.body.dataset.ready = "true";
}

// The key is tried as it is typed (after a pause), or at once on Enter.
const keyInput = $("api-key");
keyInput.value = apiKey.get();
let keyTimer = null;

function applyKey() {
  clearTimeout(keyTimer);
  const key = keyInput.value.trim();
  if (key === apiKey.get() && state.usable) return;
  apiKey.set(key);
  if (state.usable) refreshAll();
  else start();
}

keyInput.addEventListener("input", () => {
  clearTimeout(keyTimer);
  keyTimer = setTimeout(applyKey, 400);
});
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  applyKey();
});

setUsable(false);
start();
