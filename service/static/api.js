// The latentserve HTTP API as the page uses it: public endpoints only, problem+json errors.
// Paths are relative, so the page also works when served under a path prefix. Images go up as
// binary (multipart files), never as base64 in JSON: a file is sent at its own size.

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }

  // The server refused the input itself (too large, unreadable, invalid), not the call.
  get refusedInput() {
    return [413, 415, 422].includes(this.status);
  }
}

// A server with API keys needs one on every API call; the page keeps it in this browser.
const KEY_STORAGE = "latentserve.apiKey";

export const apiKey = {
  get: () => localStorage.getItem(KEY_STORAGE) ?? "",
  set: (key) => (key ? localStorage.setItem(KEY_STORAGE, key) : localStorage.removeItem(KEY_STORAGE)),
};

// What a multipart body adds to its files (boundaries, part headers), generously.
export const MULTIPART_OVERHEAD = 1024;

async function call(path, { method = "GET", params = {}, json, form } = {}) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(key, value);
  }
  const init = { method, headers: { Accept: "application/json" } };
  const key = apiKey.get();
  if (key) init.headers["X-API-Key"] = key;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    const body = new FormData();
    for (const [name, blob] of Object.entries(form)) body.append(name, blob, blob.name ?? `${name}.png`);
    init.body = body; // the browser sets multipart/form-data with its boundary
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, "No answer", "the server could not be reached; check the connection and try again");
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, payload?.title ?? response.statusText, payload?.detail ?? "");
  }
  return payload;
}

export const api = {
  models: () => call("models"),
  reference: (model) => call(`models/${encodeURIComponent(model)}/reference`),

  reconstruct: (model, image, label) =>
    call("reconstruct", { method: "POST", params: { model, label }, form: { file: image } }),

  decode: (model, latent, label) =>
    call("decode", {
      method: "POST",
      params: { model },
      json: label === null ? { latents: [latent] } : { latents: [latent], labels: [label] },
    }),

  interpolate: (model, start, end, steps, method, label) =>
    call("interpolate", {
      method: "POST",
      params: { model, steps, method, label },
      form: { start, end },
    }),

  score: (model, image, maps = false, thresholds = {}) =>
    call("score", {
      method: "POST",
      params: {
        model,
        maps: maps || undefined,
        threshold: thresholds.image,
        pixel_threshold: thresholds.pixel,
      },
      form: { file: image },
    }),

  sample: (model, n, seed, temperature, label) =>
    call("sample", { params: { model, n, seed, temperature, label } }),
};

export const pngSource = (base64) =>
  base64.startsWith("data:") ? base64 : `data:image/png;base64,${base64}`;
