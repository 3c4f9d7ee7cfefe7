// Draws a score distribution from its stored quantiles: the density between two quantiles is
// their probability gap over their distance, so equal-width bins need no raw scores.

const BINS = 40;

// The share of the distribution below `score`: linear between the stored quantiles.
export function cdf(score, levels, quantiles) {
  if (score <= quantiles[0]) return 0;
  if (score >= quantiles[quantiles.length - 1]) return 1;
  let i = 1;
  while (quantiles[i] < score) i += 1;
  const [q0, q1] = [quantiles[i - 1], quantiles[i]];
  return q1 > q0 ? levels[i - 1] + ((score - q0) / (q1 - q0)) * (levels[i] - levels[i - 1]) : levels[i];
}

// Scores as the page writes them everywhere: one decimal, none from 1000 on.
export const formatScore = (value) => (Math.abs(value) >= 1000 ? value.toFixed(0) : value.toFixed(1));

// The canvas drawn at the screen's density (sharp on high-density screens), in CSS pixels.
function fitToDevice(canvas) {
  if (!canvas.dataset.width) {
    Object.assign(canvas.dataset, { width: canvas.width, height: canvas.height });
    canvas.style.width = `${canvas.width}px`;
    canvas.style.aspectRatio = `${canvas.width} / ${canvas.height}`;
  }
  const [width, height] = [Number(canvas.dataset.width), Number(canvas.dataset.height)];
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { context, width, height };
}

export function drawHistogram(canvas, calibration, score = null) {
  const { context, width, height } = fitToDevice(canvas);
  const pad = { left: 8, right: 8, top: 10, bottom: 22 };
  context.clearRect(0, 0, width, height);
  const { levels, quantiles, threshold } = calibration;
  const low = quantiles[0];
  const high = Math.max(quantiles[quantiles.length - 1], threshold) * 1.02 + 1e-9;
  const step = (high - low) / BINS;
  const masses = Array.from({ length: BINS }, (_, b) =>
    cdf(low + (b + 1) * step, levels, quantiles) - cdf(low + b * step, levels, quantiles));
  const tallest = Math.max(...masses) || 1;
  const x = (value) => pad.left + ((value - low) / (high - low)) * (width - pad.left - pad.right);
  const base = height - pad.bottom;
  context.fillStyle = "#c7cdf7";
  masses.forEach((mass, b) => {
    const top = base - (mass / tallest) * (base - pad.top);
    context.fillRect(x(low + b * step) + 0.5, top, x(low + (b + 1) * step) - x(low + b * step) - 1, base - top);
  });
  context.strokeStyle = "#172033";
  context.setLineDash([4, 3]);
  line(context, x(threshold), pad.top - 4, base);
  context.setLineDash([]);
  context.fillStyle = "#5f6b80";
  context.font = "11px system-ui, sans-serif";
  // The axis' two ends, and the threshold's label under its line where it fits between them.
  const [lowText, highText, thresholdText] = [format(low), format(high), `threshold ${format(threshold)}`];
  const widthOf = (text) => context.measureText(text).width;
  const [first, last] = [pad.left + widthOf(lowText) + 8, width - pad.right - widthOf(highText) - 8];
  const room = last - widthOf(thresholdText);
  context.textAlign = "left";
  context.fillText(lowText, pad.left, height - 6);
  context.fillText(thresholdText, Math.min(Math.max(x(threshold) - widthOf(thresholdText) / 2, first), room), height - 6);
  if (room >= first) {
    context.textAlign = "right";
    context.fillText(highText, width - pad.right, height - 6);
  }
  canvas.setAttribute(
    "aria-label",
    `Histogram of the validation scores from ${format(low)} to ${format(high)}, threshold ${format(threshold)}` +
      (score === null ? "" : `; this image: ${format(score)}`),
  );
  if (score !== null) {
    const beyond = score > high;
    context.strokeStyle = score > threshold ? "#e0565b" : "#17794a";
    context.lineWidth = 2;
    line(context, beyond ? width - pad.right - 1 : x(Math.max(score, low)), pad.top - 6, base);
    context.lineWidth = 1;
    if (beyond) {
      context.fillStyle = "#e0565b";
      context.textAlign = "right";
      context.fillText(`${format(score)} →`, width - pad.right - 4, pad.top + 6);
    }
  }
}

function line(context, at, top, bottom) {
  context.beginPath();
  context.moveTo(at, top);
  context.lineTo(at, bottom);
  context.stroke();
}

const format = formatScore;
