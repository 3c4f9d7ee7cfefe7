// A canvas to draw a digit on (white on black, like MNIST) or to show an uploaded image.

const INK = "#ffffff";
const PAPER = "#000000";

export class DrawPad {
  constructor(canvas, { onChange = () => {}, strokeRatio = 0.075 } = {}) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d", { willReadFrequently: true });
    this.onChange = onChange;
    this.strokeRatio = strokeRatio;
    this.upload = null; // data URL of an uploaded file, sent as it is
    this.drawn = false;
    this.last = null;
    this.clear(false);
    canvas.addEventListener("pointerdown", (event) => this.#start(event));
    canvas.addEventListener("pointermove", (event) => this.#move(event));
    canvas.addEventListener("pointerup", (event) => this.#end(event));
    canvas.addEventListener("pointerleave", (event) => this.#end(event));
  }

  get isEmpty() {
    return !this.drawn && this.upload === null;
  }

  clear(notify = true) {
    this.context.fillStyle = PAPER;
    this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.upload = null;
    this.drawn = false;
    if (notify) this.onChange();
  }

  async loadFile(file) {
    const dataUrl = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
    const image = await loadImage(dataUrl);
    this.clear(false);
    const scale = Math.min(this.canvas.width / image.width, this.canvas.height / image.height);
    const [w, h] = [image.width * scale, image.height * scale];
    this.context.imageSmoothingEnabled = false;
    this.context.drawImage(image, (this.canvas.width - w) / 2, (this.canvas.height - h) / 2, w, h);
    this.upload = dataUrl;
    this.onChange();
  }

  // What to send: an upload as it is; a drawing cropped, scaled and centred the way MNIST
  // digits are (a 20x20 box centred by mass in 28x28), which is what the models were fed.
  toDataUrl(height = 28, width = 28) {
    if (this.upload !== null) return this.upload;
    if (!this.drawn) return null;
    return mnistStyle(this.canvas, height, width);
  }

  #point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) * this.canvas.width) / rect.width,
      ((event.clientY - rect.top) * this.canvas.height) / rect.height,
    ];
  }

  #start(event) {
    if (this.upload !== null) this.clear(false);
    this.canvas.setPointerCapture?.(event.pointerId);
    this.last = this.#point(event);
    this.#stroke(this.last, this.last);
  }

  #move(event) {
    if (this.last === null) return;
    const point = this.#point(event);
    this.#stroke(this.last, point);
    this.last = point;
  }

  #end() {
    if (this.last === null) return;
    this.last = null;
    this.drawn = true;
    this.onChange();
  }

  #stroke(from, to) {
    const ctx = this.context;
    ctx.strokeStyle = INK;
    ctx.lineWidth = this.canvas.width * this.strokeRatio;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...from);
    ctx.lineTo(...to);
    ctx.stroke();
  }
}

export function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the file is not an image this browser can read"));
    image.src = src;
  });
}

function inkBox(canvas) {
  const { width, height } = canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let [top, left, bottom, right] = [height, width, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (pixels[(y * width + x) * 4] > 32) {
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
        left = Math.min(left, x);
        right = Math.max(right, x);
      }
    }
  }
  return bottom < 0 ? null : { x: left, y: top, w: right - left + 1, h: bottom - top + 1 };
}

function centreOfMass(context, width, height) {
  const pixels = context.getImageData(0, 0, width, height).data;
  let [mass, sx, sy] = [0, 0, 0];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const value = pixels[(y * width + x) * 4];
      mass += value;
      sx += value * (x + 0.5);
      sy += value * (y + 0.5);
    }
  }
  return mass === 0 ? [width / 2, height / 2] : [sx / mass, sy / mass];
}

function mnistStyle(source, height, width) {
  const box = inkBox(source);
  if (box === null) return null;
  const scale = (0.72 * Math.min(height, width)) / Math.max(box.w, box.h);
  const [w, h] = [box.w * scale, box.h * scale];
  const scaled = document.createElement("canvas");
  [scaled.width, scaled.height] = [width, height];
  const ctx = scaled.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, box.x, box.y, box.w, box.h, (width - w) / 2, (height - h) / 2, w, h);
  const [cx, cy] = centreOfMass(ctx, width, height);
  const out = document.createElement("canvas");
  [out.width, out.height] = [width, height];
  const outCtx = out.getContext("2d");
  outCtx.fillStyle = PAPER;
  outCtx.fillRect(0, 0, width, height);
  outCtx.drawImage(scaled, Math.round(width / 2 - cx), Math.round(height / 2 - cy));
  return out.toDataURL("image/png");
}
