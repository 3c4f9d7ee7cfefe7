// Wires the page: model picker, draw/reconstruct, latent map, interpolation, sampling.

import { api, apiKey, pngSource } from "./api.js";
import { DrawPad } from "./drawpad.js";
import { drawHistogram } from "./histogram.js";
import { LatentMap, PALETTE } from "./latentmap.js";

const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  model: null, // the info of the selected model (an item of GET /models)
  label: null, // the class every call uses, for conditional models
};

const imageSize = () => [state.model.image.height, state.model.image.width];

// --- feedback --------------------------------------------------------------------------------

let toastTimer = null;

function showError(error) {
  const toast = $("toast");
  const needsKey = error.status === 401;
  $("api-key").classList.toggle("needed", needsKey);
  toast.textContent = needsKey
    ? `${error.message}. Enter the key in the API key field at the top.`
    : error.message;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (toast.hidden = true), 6000);
}

async function busy(element, work) {
  element.classList.add("busy");
  try {
    return await work();
  } catch (error) {
    showError(error);
  } finally {
    element.classList.remove("busy");
  }
}

// --- model and class ---------------------------------------------------------------------------

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
    button.setAttribute("aria-checked", String(index === state.label));
    button.dataset.label = index;
    button.addEventListener("click", () => {
      state.label = index;
      for (const b of picker.children) b.setAttribute("aria-checked", String(b === button));
      refreshAll();
    });
    picker.append(button);
  });
}

function renderLegend(classes) {
  const legend = $("map-legend");
  legend.replaceChildren();
  (classes ?? []).forEach((name, index) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = PALETTE[index % PALETTE.length];
    item.append(swatch, name);
    legend.append(item);
  });
}

async function selectModel(name) {
  state.model = state.models.find((m) => m.name === name);
  $("model-summary").textContent = describe(state.model);
  renderLabelPicker(state.model);
  clearResults();
  await Promise.all([loadMap(), refreshAll()]);
}

function clearResults() {
  for (const id of ["reconstruction", "map-decoded", "interp-frame"]) $(id).removeAttribute("src");
  $("latent-values").replaceChildren();
  $("latent-dim").textContent = "";
  $("reconstruction-mse").textContent = "";
  $("map-point").textContent = "Click the map";
  $("interp-strip").replaceChildren();
  $("interp-slider").disabled = true;
  $("interp-position").textContent = "";
  $("sample-grid").replaceChildren();
  clearScore();
}

// --- draw and reconstruct --------------------------------------------------------------------

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
}

async function reconstructDrawing() {
  const image = drawPad.toDataUrl(...imageSize());
  if (image === null) return;
  scoreDrawing(image);
  await busy($("encode-card"), async () => {
    const result = await api.reconstruct(state.model.name, image, state.label);
    $("reconstruction").src = pngSource(result.images[0]);
    $("reconstruction-mse").textContent = `MSE ${result.mse[0].toFixed(4)}`;
    renderLatent(result.latents[0]);
    if (latentMap.reference) latentMap.setMarker("drawing", latentMap.toPoint(result.latents[0]));
  });
}

// --- anomaly score -----------------------------------------------------------------------------

function clearScore() {
  const calibration = state.model.calibration;
  $("score-empty").hidden = calibration !== null;
  $("score-histogram").hidden = calibration === null;
  const verdict = $("score-verdict");
  verdict.className = "verdict";
  verdict.textContent = calibration ? "Draw or upload an image" : "No calibration";
  for (const id of ["score-value", "score-percentile"]) $(id).textContent = "–";
  $("score-threshold").textContent = calibration ? number(calibration.score.threshold) : "–";
  $("score-corrected").hidden = true;
  $("score-name").textContent = calibration
    ? `${calibration.score.name} (${calibration.score.unit}): ${calibration.score.description}. ` +
      `Histogram: the ${calibration.images.toLocaleString("en")} ${calibration.split} images; dashed: the threshold, ` +
      `their ${Math.round(calibration.score.threshold_quantile * 100)}th percentile.`
    : "";
  if (calibration) drawHistogram($("score-histogram"), calibration.score);
}

const number = (value) => (Math.abs(value) >= 1000 ? value.toFixed(0) : value.toFixed(1));
const verdictText = (anomalous) => (anomalous ? "Anomalous" : "Normal");

async function scoreDrawing(image) {
  const model = state.model;
  if (!model.calibration) return;
  await busy($("score-card"), async () => {
    const result = await api.score(model.name, image);
    if (state.model !== model) return;
    const verdict = $("score-verdict");
    verdict.className = `verdict ${result.anomalous[0] ? "anomalous" : "normal"}`;
    verdict.textContent = verdictText(result.anomalous[0]);
    $("score-value").textContent = `${number(result.scores[0])} ${result.unit}`;
    $("score-percentile").textContent = `${result.percentiles[0].toFixed(1)} %`;
    drawHistogram($("score-histogram"), model.calibration.score, result.scores[0]);
    const corrected = result.corrected;
    $("score-corrected").hidden = !corrected;
    if (corrected) {
      $("score-corrected").textContent =
        `Corrected for the image's own complexity (${corrected.score}): ` +
        `${number(corrected.scores[0])} ${corrected.unit}, percentile ` +
        `${corrected.percentiles[0].toFixed(1)}: ${verdictText(corrected.anomalous[0]).toLowerCase()}.`;
    }
  });
}

// --- latent map --------------------------------------------------------------------------------

async function loadMap() {
  const name = state.model.name;
  let reference = null;
  try {
    reference = await api.reference(name);
  } catch (error) {
    if (error.status !== 404) showError(error);
  }
  if (state.model.name !== name) return; // another model was picked meanwhile
  latentMap.setReference(reference);
  $("map-empty").hidden = reference !== null;
  $("map-projection").textContent =
    reference?.projection === "pca" ? "first two principal components" : "the two latent dimensions";
  renderLegend(reference ? state.model.classes ?? classNames(reference) : []);
}

const classNames = (reference) =>
  Array.from({ length: Math.max(...reference.labels) + 1 }, (_, i) => String(i));

async function decodePoint(point, latent) {
  await busy($("map-card"), async () => {
    const result = await api.decode(state.model.name, latent, state.label);
    $("map-decoded").src = pngSource(result.images[0]);
    $("map-point").textContent = `(${point[0].toFixed(2)}, ${point[1].toFixed(2)})`;
    $("map-point").dataset.latent = JSON.stringify(latent);
  });
}

// --- interpolation -----------------------------------------------------------------------------

let frames = [];

function showFrame(index) {
  $("interp-frame").src = pngSource(frames[index]);
  $("interp-position").textContent = `${index + 1} / ${frames.length}`;
  [...$("interp-strip").children].forEach((img, i) => img.classList.toggle("current", i === index));
}

async function interpolate() {
  const [start, end] = [padA.toDataUrl(...imageSize()), padB.toDataUrl(...imageSize())];
  if (start === null || end === null) {
    showError(new Error("Draw or upload both images first"));
    return;
  }
  const steps = Number($("interp-steps").value);
  const method = $("interp-method").value;
  await busy($("interpolate-card"), async () => {
    const result = await api.interpolate(state.model.name, start, end, steps, method, state.label);
    frames = result.images;
    const strip = $("interp-strip");
    strip.replaceChildren(
      ...frames.map((frame, i) => {
        const img = Object.assign(document.createElement("img"), { src: pngSource(frame), alt: `frame ${i + 1}` });
        img.className = "pixel";
        img.addEventListener("click", () => {
          $("interp-slider").value = i;
          showFrame(i);
        });
        return img;
      }),
    );
    Object.assign($("interp-slider"), { max: frames.length - 1, value: 0, disabled: false });
    showFrame(0);
  });
}

// --- sampling ------------------------------------------------------------------------------------

async function sample() {
  const seed = Number($("sample-seed").value);
  const temperature = Number($("sample-temperature").value);
  await busy($("sample-card"), async () => {
    const result = await api.sample(state.model.name, 8, seed, temperature, state.label);
    $("sample-grid").replaceChildren(
      ...result.images.map((image, i) => {
        const img = Object.assign(document.createElement("img"), { src: pngSource(image), alt: `sample ${i + 1}` });
        img.className = "pixel";
        return img;
      }),
    );
  });
}

// --- wiring ----------------------------------------------------------------------------------------

function refreshAll() {
  const work = [reconstructDrawing(), sample()];
  if (latentMap.markers.pick) work.push(decodePoint(latentMap.markers.pick, latentMap.toLatent(latentMap.markers.pick)));
  if (frames.length && !padA.isEmpty && !padB.isEmpty) work.push(interpolate());
  return Promise.all(work);
}

function wireUpload(inputId, pad) {
  $(inputId).addEventListener("change", async (event) => {
    const [file] = event.target.files;
    if (file) await pad.loadFile(file).catch(showError);
    event.target.value = "";
  });
}

const drawPad = new DrawPad($("draw-pad"), { onChange: () => reconstructDrawing() });
const padA = new DrawPad($("pad-a"), { strokeRatio: 0.085 });
const padB = new DrawPad($("pad-b"), { strokeRatio: 0.085 });
const latentMap = new LatentMap($("latent-map"), { onPick: decodePoint });

$("draw-clear").addEventListener("click", () => {
  drawPad.clear(false);
  $("reconstruction").removeAttribute("src");
  $("latent-values").replaceChildren();
  $("latent-dim").textContent = "";
  $("reconstruction-mse").textContent = "";
  clearScore();
  delete latentMap.markers.drawing;
  latentMap.draw();
});
wireUpload("draw-upload", drawPad);
$("pad-a-clear").addEventListener("click", () => padA.clear());
$("pad-b-clear").addEventListener("click", () => padB.clear());
wireUpload("pad-a-upload", padA);
wireUpload("pad-b-upload", padB);
$("interp-run").addEventListener("click", interpolate);
$("interp-slider").addEventListener("input", (event) => showFrame(Number(event.target.value)));
$("sample-run").addEventListener("click", sample);
$("sample-random").addEventListener("click", () => {
  $("sample-seed").value = Math.floor(Math.random() * 100000);
  sample();
});
$("sample-temperature").addEventListener("input", (event) => {
  $("sample-temperature-value").textContent = Number(event.target.value).toFixed(1);
});
$("model-select").addEventListener("change", (event) => selectModel(event.target.value));

async function start() {
  const listing = await api.models();
  state.models = listing.models;
  const select = $("model-select");
  select.replaceChildren(
    ...listing.models.map((m) => Object.assign(document.createElement("option"), { value: m.name, textContent: m.name })),
  );
  if (!listing.models.length) {
    showError(new Error("The server has no models loaded"));
    return;
  }
  const initial = listing.models.some((m) => m.name === listing.default) ? listing.default : listing.models[0].name;
  select.value = initial;
  await selectModel(initial);
  document.body.dataset.ready = "true";
}

const keyInput = $("api-key");
keyInput.value = apiKey.get();
keyInput.addEventListener("change", () => {
  apiKey.set(keyInput.value.trim());
  keyInput.classList.remove("needed");
  $("toast").hidden = true;
  if (document.body.dataset.ready === "true") refreshAll();
  else start().catch(showError);
});

start().catch(showError);
