// MNIST-style preprocessing of a drawing or an image file: the steps of mnist_tf/export/preprocess.py, in the same
// float32 arithmetic (every result rounded with Math.fround, ties rounded to even as tf.round does), so that the
// page feeds the model what `predict.py` and the SavedModel's image_bytes signature would. tests/test_web.py
// proves the two equal on the same images.
//
// grayscale (transparency over white) -> the ink above its paper, light on dark, stretched (of two estimates of
// the paper, the border's median or a closing/opening on a coarse grid with a noise floor, the one that leaves the
// least ink) -> cropped to the ink -> resized into a 20x20 box keeping the aspect ratio (antialiased bilinear, as
// tf.image.resize) -> placed in 28x28 with the ink's center of mass at pixel 14.

const f = Math.fround;
const INK_THRESHOLD = f(0.25);
const EPSILON = f(1e-3);
const PAPER_GRID = 4; // the paper's level is estimated on this many cells along the longer side,
const PAPER_WINDOW = 3; // in windows of this many cells,
const NOISE_FLOOR = f(0.2); // and ink below this share of the strongest is paper
const LUMA = [f(0.299), f(0.587), f(0.114)]; // ITU-R BT.601, as tf.image.rgb_to_grayscale
const BYTE_SCALE = f(1 / 255); // tf.image.convert_image_dtype from uint8

/** A grayscale image: `data[y * width + x]` in [0, 1], float32. */
export class Gray {
  constructor(data, width, height) {
    this.data = data;
    this.width = width;
    this.height = height;
  }
  at(y, x) {
    return this.data[y * this.width + x];
  }
}

/** RGBA bytes (a canvas's ImageData) -> Gray, 0 black; transparent pixels read as white. */
export function grayFromRGBA(rgba, width, height) {
  const data = new Float32Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]].map((v) => f(v * BYTE_SCALE));
    const alpha = f(rgba[4 * i + 3] * BYTE_SCALE);
    // A gray pixel is what TensorFlow decodes from a one-channel file: no luma weights applied.
    const gray = r === g && g === b ? r : f(f(f(r * LUMA[0]) + f(g * LUMA[1])) + f(b * LUMA[2]));
    data[i] = f(f(gray * alpha) + f(1 - alpha));
  }
  return new Gray(data, width, height);
}

/** Gray of any size and polarity -> Uint8Array of size*size pixels, light ink on black, MNIST-centered. */
export function toMnist(gray, size = 28) {
  const box = Math.max(1, roundHalfEven((size * 20) / 28));
  const digit = fitInBox(cropToInk(lightInkOnDark(gray)), box);
  const placed = placeByCenterOfMass(digit, size);
  return Uint8Array.from(placed.data, (v) => roundHalfEven(f(v * 255)));
}

/** Of two estimates of the paper, the one that leaves the least ink (preprocess.py's _light_ink_on_dark). */
function lightInkOnDark(gray) {
  const border = aboveTheBorder(gray);
  const paper = aboveThePaper(gray);
  return inkPixels(paper) < inkPixels(border) ? paper : border;
}

function inkPixels(ink) {
  let count = 0;
  for (const v of ink.data) if (v >= INK_THRESHOLD) count++;
  return count;
}

function aboveTheBorder(gray) {
  const { width, height } = gray;
  const border = [];
  for (let x = 0; x < width; x++) border.push(gray.at(0, x), gray.at(height - 1, x));
  for (let y = 0; y < height; y++) border.push(gray.at(y, 0), gray.at(y, width - 1));
  border.sort((a, b) => a - b);
  let background = border[Math.floor(border.length / 2)];
  const light = background > 0.5;
  const ink = light ? gray.data.map((v) => f(1 - v)) : Float32Array.from(gray.data);
  if (light) background = f(1 - background);
  return stretched(
    ink.map((v) => f(v - background)),
    width,
    height,
  );
}

function aboveThePaper(gray) {
  const { width, height } = gray;
  const small = fitInBox(gray, PAPER_GRID);
  const closing = resize(windowed(windowed(small, Math.max), Math.min), width, height);
  const opening = resize(windowed(windowed(small, Math.min), Math.max), width, height);
  const dark = closing.data.map((level, i) => Math.max(f(level - gray.data[i]), 0));
  const light = opening.data.map((level, i) => Math.max(f(gray.data[i] - level), 0));
  return stretched(largest(dark) >= largest(light) ? dark : light, width, height);
}

/** How far each pixel's ink rises above the paper, from the noise floor (0) to the strongest ink (1). */
function stretched(above, width, height) {
  const contrast = largest(above);
  const floor = f(NOISE_FLOOR * contrast);
  const divisor = Math.max(f(contrast - floor), EPSILON);
  return new Gray(
    above.map((v) => (contrast > EPSILON ? clip(f(f(v - floor) / divisor)) : 0)),
    width,
    height,
  );
}

/** `pool` (Math.max or Math.min) over the PAPER_WINDOW x PAPER_WINDOW cells around each cell, inside the image. */
function windowed(gray, pool) {
  const reach = Math.floor((PAPER_WINDOW - 1) / 2);
  const data = new Float32Array(gray.width * gray.height);
  for (let y = 0; y < gray.height; y++) {
    for (let x = 0; x < gray.width; x++) {
      let value = gray.at(y, x);
      for (let dy = -reach; dy <= reach; dy++) {
        for (let dx = -reach; dx <= reach; dx++) {
          const [yy, xx] = [y + dy, x + dx];
          if (yy >= 0 && yy < gray.height && xx >= 0 && xx < gray.width) value = pool(value, gray.at(yy, xx));
        }
      }
      data[y * gray.width + x] = value;
    }
  }
  return new Gray(data, gray.width, gray.height);
}

function largest(values) {
  let most = -Infinity;
  for (const v of values) most = Math.max(most, v);
  return most;
}

function cropToInk(ink) {
  const rows = [];
  const cols = [];
  for (let y = 0; y < ink.height; y++) {
    for (let x = 0; x < ink.width; x++) {
      if (ink.at(y, x) >= INK_THRESHOLD) {
        rows[y] = true;
        cols[x] = true;
      }
    }
  }
  const [top, bottom] = [rows.findIndex(Boolean), rows.findLastIndex(Boolean)];
  const [left, right] = [cols.findIndex(Boolean), cols.findLastIndex(Boolean)];
  if (top < 0) return new Gray(new Float32Array(1), 1, 1);
  const width = right - left + 1;
  const height = bottom - top + 1;
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data[y * width + x] = ink.at(top + y, left + x);
  }
  return new Gray(data, width, height);
}

function fitInBox(digit, box) {
  const longest = Math.max(digit.width, digit.height);
  const newSize = (n) => Math.max(1, roundHalfEven(f(f(n * box) / longest)));
  const resized = resize(digit, newSize(digit.width), newSize(digit.height));
  return new Gray(resized.data.map(clip), resized.width, resized.height);
}

/** tf.image.resize(..., antialias=True): scale_and_translate with a triangle kernel, rows, then columns. */
function resize(image, width, height) {
  const columns = resampleSpans(image.width, width);
  const rows = resampleSpans(image.height, height);
  const between = new Float32Array(height * image.width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < image.width; x++) {
      let sum = 0;
      rows[y].weights.forEach((w, k) => {
        sum = f(sum + f(w * image.at(rows[y].start + k, x)));
      });
      between[y * image.width + x] = sum;
    }
  }
  const data = new Float32Array(height * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      columns[x].weights.forEach((w, k) => {
        sum = f(sum + f(w * between[y * image.width + columns[x].start + k]));
      });
      data[y * width + x] = sum;
    }
  }
  return new Gray(data, width, height);
}

/** For each output pixel, the input pixels it averages and their weights (TensorFlow's ComputeSpans). */
function resampleSpans(inputSize, outputSize) {
  const scale = f(outputSize / inputSize);
  const inverseScale = f(1 / scale);
  const kernelScale = Math.max(inverseScale, 1); // antialiasing widens the kernel when shrinking
  const inverseKernelScale = f(1 / kernelScale);
  const spans = [];
  for (let x = 0; x < outputSize; x++) {
    const sample = f(f(x + 0.5) * inverseScale);
    if (sample < 0 || sample > inputSize) {
      spans.push({ start: 0, weights: [] });
      continue;
    }
    const start = clampIndex(Math.ceil(f(f(sample - kernelScale) - 0.5)), inputSize);
    const end = clampIndex(Math.floor(f(f(sample + kernelScale) - 0.5)), inputSize) + 1;
    const weights = [];
    let total = 0;
    for (let source = start; source < end; source++) {
      const position = f(f(source + 0.5) - sample);
      const distance = Math.abs(f(position * inverseKernelScale));
      const weight = distance < 1 ? f(1 - distance) : 0;
      total = f(total + weight);
      weights.push(weight);
    }
    const inverseTotal = f(1 / total);
    spans.push({ start, weights: weights.map((w) => f(w * inverseTotal)) });
  }
  return spans;
}

function placeByCenterOfMass(digit, size) {
  const rowMass = new Float32Array(digit.height);
  const colMass = new Float32Array(digit.width);
  for (let y = 0; y < digit.height; y++) {
    for (let x = 0; x < digit.width; x++) {
      rowMass[y] = f(rowMass[y] + digit.at(y, x));
      colMass[x] = f(colMass[x] + digit.at(y, x));
    }
  }
  const top = centeringOffset(rowMass, size);
  const left = centeringOffset(colMass, size);
  const data = new Float32Array(size * size);
  for (let y = 0; y < digit.height; y++) {
    for (let x = 0; x < digit.width; x++) data[(top + y) * size + left + x] = digit.at(y, x);
  }
  return new Gray(data, size, size);
}

/** Where a profile of mass.length pixels goes so that its center of mass lands on pixel size / 2. */
function centeringOffset(mass, size) {
  let total = 0;
  let moment = 0;
  mass.forEach((m, i) => {
    total = f(total + m);
    moment = f(moment + f(m * i));
  });
  const center = f(moment / Math.max(total, f(1e-6)));
  const offset = roundHalfEven(f(Math.floor(size / 2) - center));
  return Math.min(Math.max(offset, 0), size - mass.length);
}

function clip(v) {
  return Math.min(Math.max(v, 0), 1);
}

function clampIndex(i, size) {
  return Math.min(Math.max(i, 0), size - 1);
}

function roundHalfEven(x) {
  const rounded = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : rounded;
}
