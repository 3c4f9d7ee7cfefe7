// A canvas to draw a digit on (white on black, like MNIST) or to show an uploaded image: with a
// mouse, a pen or a finger (a tap makes a dot; a stroke may start outside the pad), or with the
// keyboard (arrows move the pen, Space puts it down and lifts it, Delete clears), or by dropping
// an image file on it.

const INK = "#ffffff";
const PAPER = "#000000";

export class DrawPad {
  constructor(canvas, { onChange = () => {}, onFile = () => {}, strokeRatio = 0.075 } = {}) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d", { willReadFrequently: true });
    this.onChange = onChange; // after a stroke, a clear (when asked) or a shown upload
    this.onFile = onFile; // a file dropped on the pad
    this.strokeRatio = strokeRatio;
    this.upload = null; // the uploaded File, sent as it is
    this.drawn = false;
    this.last = null; // the pen's point while a stroke is under way
    this.enabled = false;
    this.pen = null; // the keyboard pen: [x, y] in canvas pixels
    this.penDown = false;
    this.cursor = Object.assign(document.createElement("span"), { className: "pen-cursor", hidden: true });
    this.cursor.setAttribute("aria-hidden", "true");
    canvas.after(this.cursor);
    this.clear(false);
    canvas.addEventListener("pointerdown", (event) => this.#start(event));
    canvas.addEventListener("pointermove", (event) => this.#move(event));
    canvas.addEventListener("pointerup", () => this.#end());
    canvas.addEventListener("pointercancel", () => this.#end());
    // A stroke begun outside the pad: the pen enters it with the button held.
    document.addEventListener("pointermove", (event) => {
      if (this.last === null && event.buttons & 1 && event.pointerType !== "touch" && this.#inside(event)) {
        this.#start(event);
      }
    });
    canvas.addEventListener("keydown", (event) => this.#key(event));
    canvas.addEventListener("focus", () => {
      if (canvas.matches(":focus-visible")) this.#showCursor(); // not for a click or a tap
    });
    canvas.addEventListener("blur", () => {
      if (this.penDown) this.#lift();
      this.cursor.hidden = true;
    });
    canvas.addEventListener("dragover", (event) => {
      if (!this.enabled) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      canvas.classList.add("drop-target");
    });
    canvas.addEventListener("dragleave", () => canvas.classList.remove("drop-target"));
    canvas.addEventListener("drop", (event) => {
      event.preventDefault();
      canvas.classList.remove("drop-target");
      const file = [...(event.dataTransfer?.files ?? [])][0];
      if (this.enabled && file) this.onFile(file);
    });
  }

  get isEmpty() {
    return !this.drawn && this.upload === null;
  }

  setEnabled(enabled) {
    this.enabled = enabled;
    this.canvas.setAttribute("aria-disabled", String(!enabled));
    if (!enabled) this.#end();
  }

  clear(notify = true) {
    this.context.fillStyle = PAPER;
    this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.upload = null;
    this.drawn = false;
    this.canvas.dataset.empty = "true";
    if (notify) this.onChange();
  }

  // An uploaded image (any decoded image: an HTMLImageElement or ImageBitmap), shown scaled to
  // fit and centred on black: the way the service letterboxes it.
  showUpload(file, image) {
    this.clear(false);
    const [width, height] = [image.naturalWidth ?? image.width, image.naturalHeight ?? image.height];
    const scale = Math.min(this.canvas.width / width, this.canvas.height / height);
    const [w, h] = [width * scale, height * scale];
    this.context.imageSmoothingEnabled = scale < 1; // smooth photos down, keep small digits crisp
    this.context.drawImage(image, (this.canvas.width - w) / 2, (this.canvas.height - h) / 2, w, h);
    this.upload = file;
    this.canvas.dataset.empty = "false";
    this.onChange();
  }

  // What to send: an upload as it is; a drawing cropped, scaled and centred the way MNIST
  // digits are (a 20x20 box centred by mass in 28x28), which is what the models were fed.
  async toBlob(height = 28, width = 28) {
    if (this.upload !== null) return this.upload;
    if (!this.drawn) return null;
    const canvas = mnistStyle(this.canvas, height, width);
    if (canvas === null) return null;
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    return new File([blob], "drawing.png", { type: "image/png" });
  }

  // ---- pointer

  #point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) * this.canvas.width) / rect.width,
      ((event.clientY - rect.top) * this.canvas.height) / rect.height,
    ];
  }

  #inside(event) {
    const rect = this.canvas.getBoundingClientRect();
    const { clientX: x, clientY: y } = event;
    return x >= rect.left && x <= rect.right && y >= rect.top && y <= rect.bottom;
  }

  #start(event) {
    if (!this.enabled || (event.pointerType === "mouse" && !(event.buttons & 1))) return;
    this.#begin(this.#point(event));
    try {
      this.canvas.setPointerCapture(event.pointerId);
    } catch {
      // a pointer that entered while pressed elsewhere may belong to another element
    }
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
    this.canvas.dataset.empty = "false";
    this.onChange();
  }

  #begin(point) {
    if (this.upload !== null) this.clear(false);
    this.last = point;
    this.#dot(point); // a tap is a dot
  }

  // ---- keyboard

  #showCursor() {
    if (!this.enabled) return;
    this.pen ??= [this.canvas.width / 2, this.canvas.height / 2];
    this.#placeCursor();
    this.cursor.hidden = false;
  }

  #placeCursor() {
    const [x, y] = this.pen;
    const { width, height } = this.canvas;
    this.cursor.style.left = `${(x / width) * 100}%`;
    this.cursor.style.top = `${(y / height) * 100}%`;
    this.cursor.classList.toggle("down", this.penDown);
  }

  #key(event) {
    if (!this.enabled) return;
    const step = (this.canvas.width / 28) * (event.shiftKey ? 4 : 1.5);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    this.#showCursor();
    if (event.key in moves) {
      const [dx, dy] = moves[event.key];
      const [x, y] = this.pen;
      const next = [clamp(x + dx, 0, this.canvas.width), clamp(y + dy, 0, this.canvas.height)];
      if (this.penDown) {
        this.#stroke(this.last, next);
        this.last = next;
      }
      this.pen = next;
    } else if (event.key === " " || event.key === "Spacebar") {
      if (this.penDown) this.#lift();
      else {
        this.penDown = true;
        this.#begin(this.pen);
      }
    } else if (event.key === "Enter") {
      if (this.penDown) this.#lift();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      this.penDown = false;
      this.last = null;
      this.clear();
    } else {
      return;
    }
    event.preventDefault();
    this.#placeCursor();
  }

  #lift() {
    this.penDown = false;
    this.#end();
    this.#placeCursor();
  }

  // ---- ink

  #dot([x, y]) {
    const ctx = this.context;
    ctx.fillStyle = INK;
    ctx.beginPath();
    ctx.arc(x, y, (this.canvas.width * this.strokeRatio) / 2, 0, 2 * Math.PI);
    ctx.fill();
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

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

// An image file decoded by the browser, with its size in pixels.
export async function decodeImage(file) {
  const url = URL.createObjectURL(file);
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    return image;
  } catch {
    throw new Error(`${file.name || "the file"} is not an image this browser can read`);
  } finally {
    URL.revokeObjectURL(url);
  }
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
  return out;
}
