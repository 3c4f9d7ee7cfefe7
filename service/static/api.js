// The latentserve HTTP API as the page uses it: public endpoints only, problem+json errors.
// Paths are relative, so the page also works when served under a path prefix.

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

// A server with API keys needs one on every API call; the page keeps it in this browser.
const KEY_STORAGE = "latentserve.apiKey";

export const apiKey = {
  get: () => localStorage.getItem(KEY_STORAGE) ?? "",
  set: (key) => (key ? localStorage.setItem(KEY_STORAGE, key) : localStorage.removeItem(KEY_STORAGE)),
};

async function call(path, { method = "GET", params = {}, body } = {}) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(key, value);
  }
  const init = { method, headers: { Accept: "application/json" } };
  const key = apiKey.get();
  if (key) init.headers["X-API-Key"] = key;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(
      response.status,
      payload?.title ?? response.statusText,
      payload?.detail ?? "",
    );
  }
  return payload;
}

const withLabel = (body, label) => (label === null ? body : { ...body, labels: [label] });

export const api = {
  models: () => call("models"),
  reference: (model) => call(`models/${encodeURIComponent(model)}/reference`),

  reconstruct: (model, imageDataUrl, label) =>
    call("reconstruct", {
      method: "POST",
      params: { model },
      body: withLabel({ images: [imageDataUrl] }, label),
    }),

  decode: (model, latent, label) =>
    call("decode", {
      method: "POST",
      params: { model },
      body: withLabel({ latents: [latent] }, label),
    }),

  interpolate: (model, startDataUrl, endDataUrl, steps, method, label) =>
    call("interpolate", {
      method: "POST",
      params: { model },
      body: {
        start: { image: startDataUrl },
        end: { image: endDataUrl },
        steps,
        method,
        ...(label === null ? {} : { label }),
      },
    }),

  score: (model, imageDataUrl) =>
    call("score", { method: "POST", params: { model }, body: { images: [imageDataUrl] } }),

  sample: (model, n, seed, temperature, label) =>
    call("sample", { params: { model, n, seed, temperature, label } }),
};

export const pngSource = (base64) =>
  base64.startsWith("data:") ? base64 : `data:image/png;base64,${base64}`;
