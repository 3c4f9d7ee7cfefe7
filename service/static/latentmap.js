// The latent map: a model's reference points coloured by class; a click picks a latent.

export const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

const MARGIN = 0.06;

export class LatentMap {
  constructor(canvas, { onPick = () => {} } = {}) {
    this.canvas = canvas;
    this.onPick = onPick;
    this.reference = null;
    this.markers = {}; // name -> [x, y] in map coordinates
    this.#fitToDevice();
    canvas.addEventListener("click", (event) => this.#click(event));
  }

  // reference: the ReferenceSet of GET /models/{name}/reference
  setReference(reference) {
    this.reference = reference;
    this.markers = {};
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
    this.markers[name] = point;
    this.draw();
  }

  draw() {
    const ctx = this.context;
    const { width, height } = this.size;
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "#fbfcfe";
    ctx.fillRect(0, 0, width, height);
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

  #click(event) {
    if (!this.reference) return;
    const rect = this.canvas.getBoundingClientRect();
    const px = ((event.clientX - rect.left) * this.size.width) / rect.width;
    const py = ((event.clientY - rect.top) * this.size.height) / rect.height;
    const point = this.#fromPixel([px, py]);
    this.setMarker("pick", point);
    this.onPick(point, this.toLatent(point));
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

function boundsOf(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [xmin, xmax, ymin, ymax] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const [dx, dy] = [(xmax - xmin || 1) * MARGIN, (ymax - ymin || 1) * MARGIN];
  return { xmin: xmin - dx, xmax: xmax + dx, ymin: ymin - dy, ymax: ymax + dy };
}
