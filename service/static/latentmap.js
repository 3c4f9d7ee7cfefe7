// The latent map: a model's reference points coloured by class; a click, a tap or the keyboard
// (arrows move a cursor, Enter or Space picks the point under it) picks a latent.

export const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

const MARGIN = 0.06;
const KEY_STEPS = 40; // arrow presses across the map; Shift moves five times as far

export class LatentMap {
  constructor(canvas, { onPick = () => {}, onCursor = () => {} } = {}) {
    this.canvas = canvas;
    this.onPick = onPick;
    this.onCursor = onCursor; // the keyboard cursor moved: (point) or null when it is hidden
    this.reference = null;
    this.model = null; // the model whose reference is shown
    this.markers = {}; // name -> [x, y] in map coordinates
    this.cursor = null; // the keyboard cursor, in map coordinates, while the map has focus
    this.enabled = false;
    this.#fitToDevice();
    canvas.addEventListener("click", (event) => this.#click(event));
    canvas.addEventListener("keydown", (event) => this.#key(event));
    canvas.addEventListener("focus", () => {
      if (canvas.matches(":focus-visible")) this.#showCursor();
    });
    canvas.addEventListener("blur", () => {
      this.cursor = null;
      this.onCursor(null);
      this.draw();
    });
  }

  setEnabled(enabled) {
    this.enabled = enabled;
    this.canvas.setAttribute("aria-disabled", String(!enabled));
  }

  // reference: the ReferenceSet of GET /models/{name}/reference (null: none)
  setReference(reference, model = null) {
    this.reference = reference;
    this.model = reference ? model : null;
    this.markers = {};
    this.cursor = null;
    this.bounds = reference ? boundsOf(reference.points) : null;
    this.draw();
  }

  // point [x, y] on the map -> latent = projection_mean + point @ projection_components
  toLatent([x, y]) {
    const { projection_mean: mean, projection_components: [c0, c1] } = this.reference;
    return mean.map((m, i) => m + x * c0[i] + y * c1[i]);
  }

  // latent -> point = (latent - projection_mean) @ projection_components.T
  toPoint(latent) {
    const { projection_mean: mean, projection_components: components } = this.reference;
    return components.map((c) => c.reduce((sum, ci, i) => sum + ci * (latent[i] - mean[i]), 0));
  }

  setMarker(name, point) {
    if (point === null) delete this.markers[name];
    else this.markers[name] = point;
    this.draw();
  }

  draw() {
    const ctx = this.context;
    const { width, height } = this.size;
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "#fbfcfe";
    ctx.fillRect(0, 0, width, height);
    this.canvas.dataset.markers = Object.keys(this.markers).sort().join(" "); // what is drawn on it
    if (!this.reference) return;
    this.#drawAxes();
    ctx.globalAlpha = 0.7;
    this.reference.points.forEach(([x, y], i) => {
      const [px, py] = this.#toPixel([x, y]);
      ctx.fillStyle = PALETTE[this.reference.labels[i] % PALETTE.length];
      ctx.beginPath();
      ctx.arc(px, py, 2.2, 0, 2 * Math.PI);
      ctx.fill();
    });
    ctx.globalAlpha = 1;
    if (this.markers.drawing) this.#drawMarker(this.markers.drawing, "#111827", "diamond");
    if (this.markers.pick) this.#drawMarker(this.markers.pick, "#111827", "cross");
    if (this.cursor) this.#drawMarker(this.cursor, "#4f46e5", "ring");
  }

  #fitToDevice() {
    const ratio = window.devicePixelRatio || 1;
    this.size = { width: this.canvas.width, height: this.canvas.height };
    this.canvas.style.width = `${this.size.width}px`;
    this.canvas.style.aspectRatio = `${this.size.width} / ${this.size.height}`;
    this.canvas.width = this.size.width * ratio;
    this.canvas.height = this.size.height * ratio;
    this.context = this.canvas.getContext("2d");
    this.context.scale(ratio, ratio);
  }

  #toPixel([x, y]) {
    const { xmin, xmax, ymin, ymax } = this.bounds;
    const { width, height } = this.size;
    return [((x - xmin) / (xmax - xmin)) * width, (1 - (y - ymin) / (ymax - ymin)) * height];
  }

  #fromPixel([px, py]) {
    const { xmin, xmax, ymin, ymax } = this.bounds;
    const { width, height } = this.size;
    return [xmin + (px / width) * (xmax - xmin), ymin + (1 - py / height) * (ymax - ymin)];
  }

  #pick(point) {
    this.setMarker("pick", point);
    this.onPick(point, this.toLatent(point));
  }

  #click(event) {
    if (!this.reference || !this.enabled) return;
    const rect = this.canvas.getBoundingClientRect();
    const px = ((event.clientX - rect.left) * this.size.width) / rect.width;
    const py = ((event.clientY - rect.top) * this.size.height) / rect.height;
    this.#pick(this.#fromPixel([px, py]));
  }

  #showCursor() {
    if (!this.reference || !this.enabled) return;
    if (!this.cursor) {
      const { xmin, xmax, ymin, ymax } = this.bounds;
      this.cursor = this.markers.pick ? [...this.markers.pick] : [(xmin + xmax) / 2, (ymin + ymax) / 2];
    }
    this.onCursor(this.cursor);
    this.draw();
  }

  #key(event) {
    if (!this.reference || !this.enabled) return;
    const { xmin, xmax, ymin, ymax } = this.bounds;
    const scale = event.shiftKey ? 5 : 1;
    const [dx, dy] = [((xmax - xmin) / KEY_STEPS) * scale, ((ymax - ymin) / KEY_STEPS) * scale];
    const moves = { ArrowLeft: [-dx, 0], ArrowRight: [dx, 0], ArrowUp: [0, dy], ArrowDown: [0, -dy] };
    if (event.key in moves) {
      this.#showCursor();
      const [mx, my] = moves[event.key];
      this.cursor = [clamp(this.cursor[0] + mx, xmin, xmax), clamp(this.cursor[1] + my, ymin, ymax)];
      this.onCursor(this.cursor);
      this.draw();
    } else if (event.key === "Enter" || event.key === " ") {
      this.#showCursor();
      this.#pick([...this.cursor]);
      this.draw();
    } else {
      return;
    }
    event.preventDefault();
  }

  #drawAxes() {
    const ctx = this.context;
    const { width, height } = this.size;
    const [ox, oy] = this.#toPixel([0, 0]);
    ctx.strokeStyle = "#e3e7ee";
    ctx.lineWidth = 1;
    ctx.beginPath();
    if (ox > 0 && ox < width) {
      ctx.moveTo(ox, 0);
      ctx.lineTo(ox, height);
    }
    if (oy > 0 && oy < height) {
      ctx.moveTo(0, oy);
      ctx.lineTo(width, oy);
    }
    ctx.stroke();
  }

  #drawMarker(point, colour, shape) {
    const ctx = this.context;
    const [x, y] = this.#toPixel(point);
    for (const [stroke, width] of [["#ffffff", 5], [colour, 2]]) {
      ctx.strokeStyle = stroke;
      ctx.lineWidth = width;
      ctx.beginPath();
      if (shape === "cross") {
        ctx.moveTo(x - 7, y);
        ctx.lineTo(x + 7, y);
        ctx.moveTo(x, y - 7);
        ctx.lineTo(x, y + 7);
      } else if (shape === "ring") {
        ctx.arc(x, y, 10, 0, 2 * Math.PI);
      } else {
        ctx.moveTo(x, y - 7);
        ctx.lineTo(x + 7, y);
        ctx.lineTo(x, y + 7);
        ctx.lineTo(x - 7, y);
        ctx.closePath();
      }
      ctx.stroke();
    }
  }
}

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

function boundsOf(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [xmin, xmax, ymin, ymax] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const [dx, dy] = [(xmax - xmin || 1) * MARGIN, (ymax - ymin || 1) * MARGIN];
  return { xmin: xmin - dx, xmax: xmax + dx, ymin: ymin - dy, ymax: ymax + dy };
}
