// The draw-a-digit page: a drawing (or an image file) -> preprocess.js -> a LiteRT model exported by mnist_tf, run
// by LiteRT.js on the CPU (WebAssembly), served with its report by scripts/serve_web.py under models/.
//
// window.mnistPage is what tests read: the drawing's revision, and the last result (the 28x28 pixels the model
// saw, its probabilities, whether it is a digit, which model, for which revision).

import { loadAndCompile, loadLiteRt, Tensor } from "@litertjs/core";
import { zipSync } from "fflate";
import { grayFromRGBA, toMnist } from "./preprocess.js";

const MAX_PIXELS = 64 * 2 ** 20; // as predict.py: larger images are refused, not decoded
const VARIANTS = ["float32", "dynamic_range", "int8"]; // the order the page lists them in
const STROKE_WIDTH = 20; // on the 280-pixel pad: close to MNIST's strokes once shrunk into 20x20

const pad = document.getElementById("pad");
const padContext = pad.getContext("2d", { willReadFrequently: true });
const seen = document.getElementById("seen").getContext("2d");
const statusLine = document.getElementById("status");

const page = {
  revision: 0, // bumped by every change of the input
  result: null, // {revision, variant, pixels, probabilities, milliseconds, isDigit}
  busy: false,
  benchmark, // (variant, runs) -> mean milliseconds per image
};
window.mnistPage = page;

let report = null; // models/report.json
let classNames = []; // the export's class names: label i is classNames[i]
let variant = null; // the chosen variant's name
const compiled = new Map(); // variant -> Promise of its compiled model
let source = null; // {kind: "pad"} or {kind: "file", gray}

function showStatus(message, isError = false) {
  statusLine.textContent = message;
  statusLine.classList.toggle("error", isError);
}

function fail(error) {
  showStatus(error.message || String(error), true);
}

// ---- Models --------------------------------------------------------------------------------------------------

async function start() {
  clearPad();
  const response = await fetch("models/report.json");
  if (!response.ok) throw new Error(`could not load models/report.json: HTTP ${response.status}`);
  report = await response.json();
  classNames = report.class_names ?? [..."0123456789"]; // exports from before class names were written
  showLabels();
  const order = (name) => (VARIANTS.includes(name) ? VARIANTS.indexOf(name) : VARIANTS.length);
  const kept = Object.entries(report.variants)
    .filter(([, v]) => !v.refused)
    .sort(([a], [b]) => order(a) - order(b));
  if (kept.length === 0) throw new Error("the export has no LiteRT model that passed verification");
  if (!kept.every(([, v]) => v.input && v.output)) {
    throw new Error("models/report.json lacks the models' input and output types: export the model again");
  }
  await loadLiteRt("./node_modules/@litertjs/core/wasm/");
  const fieldset = document.getElementById("variants");
  for (const [name, details] of kept) {
    const radio = Object.assign(document.createElement("input"), { type: "radio", name: "variant", value: name });
    radio.addEventListener("change", () => choose(name).catch(fail));
    const megabytes = (details.bytes / 2 ** 20).toFixed(2);
    const accuracy = (100 * details.test_accuracy).toFixed(2);
    const label = document.createElement("label");
    label.append(radio, ` ${name} · ${megabytes} MB · ${accuracy}% test`);
    fieldset.append(label);
  }
  const first = kept[0][0];
  fieldset.querySelector(`input[value="${first}"]`).checked = true;
  await choose(first);
}

function model(name) {
  if (!compiled.has(name)) {
    const url = `models/${name}.tflite`;
    const loading = fetch(url)
      .then((response) => {
        if (!response.ok) throw new Error(`could not load ${url}: HTTP ${response.status}`);
        return response.arrayBuffer();
      })
      .then((bytes) => loadAndCompile(new Uint8Array(bytes), { accelerator: "wasm" }))
      .catch((error) => {
        compiled.delete(name); // try again on the next choice
        throw new Error(`could not load the ${name} model: ${error.message || error}`);
      });
    compiled.set(name, loading);
  }
  return compiled.get(name);
}

async function choose(name) {
  showStatus(`Loading the ${name} model…`);
  await model(name);
  variant = name;
  const served = report.saved_model ? `${report.saved_model}, ` : ""; // the export: <name>/<version>
  showStatus(`${served}${name} model ready: draw a digit.`);
  page.revision++;
  await predict();
}

/** Probabilities for 28x28 pixels (Uint8Array), and the milliseconds the model took. */
async function classify(name, pixels) {
  const compiledModel = await model(name);
  const [rows, cols] = report.variants[name].input.shape.slice(1, 3);
  const input = new Tensor(pixels, [1, rows, cols, 1]);
  const started = performance.now();
  const outputs = await compiledModel.run(input);
  const milliseconds = performance.now() - started;
  input.delete();
  const raw = outputs[0].toTypedArray().slice();
  outputs.forEach((tensor) => tensor.delete());
  const { scale, zero_point: zeroPoint } = report.variants[name].output;
  const probabilities = Array.from(raw, (q) => (scale ? (q - zeroPoint) * scale : q));
  return { probabilities, milliseconds };
}

/** Mean milliseconds per image over `runs` classifications (one run is below the browser's timer resolution). */
async function benchmark(name, runs = 500) {
  const pixels = page.result ? Uint8Array.from(page.result.pixels) : new Uint8Array(28 * 28);
  await classify(name, pixels); // warm up
  const started = performance.now();
  for (let i = 0; i < runs; i++) await classify(name, pixels);
  return (performance.now() - started) / runs;
}

// ---- Predicting ------------------------------------------------------------------------------------------------

function inputPixels() {
  const size = report.variants[variant].input.shape[1];
  if (source?.kind === "file") return toMnist(source.gray, size);
  const { data, width, height } = padContext.getImageData(0, 0, pad.width, pad.height);
  return toMnist(grayFromRGBA(data, width, height), size);
}

/** Classifies the current input; when it changes meanwhile, classifies again (one run at a time). */
async function predict() {
  if (page.busy || !variant || !source) return;
  page.busy = true;
  try {
    while (source && (page.result?.revision !== page.revision || page.result?.variant !== variant)) {
      const revision = page.revision;
      const name = variant;
      const pixels = inputPixels();
      const { probabilities, milliseconds } = await classify(name, pixels);
      if (!source) break; // cleared meanwhile
      page.result = { revision, variant: name, pixels: Array.from(pixels), probabilities, milliseconds };
      show(page.result);
    }
  } catch (error) {
    fail(error);
  } finally {
    page.busy = false;
  }
}

/** Whether the model takes the image for a digit: its top probability reaches the export's threshold (the
 * SavedModel's is_digit, mnist_tf/export/decision.py; an export without one takes everything for a digit). */
function isDigit(probabilities) {
  return Math.max(...probabilities) >= (report.decision?.threshold_probability ?? 0);
}

function show({ pixels, probabilities, milliseconds, variant: name }) {
  const ranked = probabilities
    .map((p, index) => [p, classNames[index] ?? String(index)])
    .sort((a, b) => b[0] - a[0]);
  const digit = isDigit(probabilities);
  page.result.isDigit = digit;
  const prediction = document.getElementById("prediction");
  prediction.textContent = ranked[0][1];
  document.getElementById("label").value = ranked[0][1]; // what to keep it as, unless corrected
  prediction.classList.toggle("not-a-digit", !digit);
  document.getElementById("verdict").textContent = digit ? "" : "not a digit?";
  document.getElementById("top3").innerHTML = ranked
    .slice(0, 3)
    .map(
      ([p, name]) =>
        `<li><span>${name}</span><span class="bar" style="width:${(100 * p).toFixed(1)}%"></span>` +
        `<span class="value">${(100 * p).toFixed(1)}%</span></li>`,
    )
    .join("");
  const image = seen.createImageData(28, 28);
  pixels.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  seen.putImageData(image, 0, 0);
  document.getElementById("timing").textContent = `${name} model: ${milliseconds.toFixed(2)} ms in the browser`;
}

function changed() {
  page.revision++;
  requestAnimationFrame(() => predict());
}

// ---- Drawing ---------------------------------------------------------------------------------------------------

function clearPad() {
  padContext.fillStyle = "#fff";
  padContext.fillRect(0, 0, pad.width, pad.height);
  source = null;
  page.result = null;
  document.getElementById("prediction").textContent = "–";
  document.getElementById("prediction").classList.remove("not-a-digit");
  document.getElementById("verdict").textContent = "";
  document.getElementById("top3").innerHTML = "";
  seen.clearRect(0, 0, 28, 28);
  page.revision++;
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [((event.clientX - box.left) * pad.width) / box.width, ((event.clientY - box.top) * pad.height) / box.height];
}

let last = null;
pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  source = { kind: "pad" };
  last = point(event);
  stroke(last, last);
});
pad.addEventListener("pointermove", (event) => {
  if (!last) return;
  const next = point(event);
  stroke(last, next);
  last = next;
});
for (const type of ["pointerup", "pointercancel"]) pad.addEventListener(type, () => (last = null));

function stroke(from, to) {
  padContext.strokeStyle = "#000";
  padContext.lineWidth = STROKE_WIDTH;
  padContext.lineCap = padContext.lineJoin = "round";
  padContext.beginPath();
  padContext.moveTo(...from);
  padContext.lineTo(...to);
  padContext.stroke();
  changed();
}

document.getElementById("clear").addEventListener("click", clearPad);

// ---- Image files ---------------------------------------------------------------------------------------------

async function openFile(file) {
  let bitmap;
  try {
    // As decoded, without color management: what TensorFlow's decoders give predict.py.
    bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch {
    throw new Error(`${file.name}: not an image this browser can decode`);
  }
  if (bitmap.width * bitmap.height > MAX_PIXELS) {
    throw new Error(`${file.name}: more than ${MAX_PIXELS.toLocaleString("en")} pixels`);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height);
  clearPad();
  const fit = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
  const [width, height] = [bitmap.width * fit, bitmap.height * fit];
  padContext.drawImage(bitmap, (pad.width - width) / 2, (pad.height - height) / 2, width, height);
  source = { kind: "file", gray: grayFromRGBA(data, bitmap.width, bitmap.height) };
  showStatus(`${file.name}: ${bitmap.width}×${bitmap.height}`);
  changed();
}

document.getElementById("file").addEventListener("change", (event) => {
  if (event.target.files.length) openFile(event.target.files[0]).catch(fail);
  event.target.value = ""; // the same file again is a new choice
});
pad.addEventListener("dragover", (event) => {
  event.preventDefault();
  pad.classList.add("dropping");
});
pad.addEventListener("dragleave", () => pad.classList.remove("dropping"));
pad.addEventListener("drop", (event) => {
  event.preventDefault();
  pad.classList.remove("dropping");
  if (event.dataTransfer.files.length) openFile(event.dataTransfer.files[0]).catch(fail);
});

// ---- Collecting labelled drawings ----------------------------------------------------------------------------
// Kept in this browser (localStorage) as PNGs of the pad, and downloaded as a zip of <label>/<n>.png: the folder
// layout of --source=folder (mnist_tf/data/folder.py), which splits it into train and test itself.

const STORE = "mnist_tf.drawings"; // [{label, png: data URL}]

function keptDrawings() {
  return JSON.parse(localStorage.getItem(STORE) ?? "[]");
}

function showLabels() {
  const select = document.getElementById("label");
  const option = (name) => Object.assign(document.createElement("option"), { value: name, textContent: name });
  select.replaceChildren(...classNames.map(option));
  showKept();
}

function showKept() {
  const drawings = keptDrawings();
  const counts = new Map();
  drawings.forEach(({ label }) => counts.set(label, (counts.get(label) ?? 0) + 1));
  const each = [...counts].map(([label, count]) => `${label} ×${count}`).join(", ");
  if (drawings.length) {
    document.getElementById("kept").textContent = `${drawings.length} kept in this browser: ${each}`;
  }
  document.getElementById("download").disabled = document.getElementById("forget").disabled = !drawings.length;
  page.kept = drawings.length;
}

function keep() {
  if (source?.kind !== "pad") throw new Error("draw something to keep first");
  const label = document.getElementById("label").value;
  try {
    localStorage.setItem(STORE, JSON.stringify([...keptDrawings(), { label, png: pad.toDataURL("image/png") }]));
  } catch {
    throw new Error("this browser's storage is full: download the zip, then forget them");
  }
  clearPad();
  showKept();
  showStatus(`kept as ${label}: draw the next one`);
}

function download() {
  const files = {};
  keptDrawings().forEach(({ label, png }, i) => {
    const folder = label.replaceAll("/", "_"); // "T-shirt/top" is one folder
    const bytes = Uint8Array.from(atob(png.split(",")[1]), (c) => c.charCodeAt(0));
    files[`${folder}/${String(i).padStart(4, "0")}.png`] = bytes;
  });
  const zip = new Blob([zipSync(files, { level: 0 })], { type: "application/zip" }); // PNGs are compressed
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(zip) });
  link.download = "my_digits.zip";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000); // once the download has started
}

document.getElementById("keep").addEventListener("click", () => {
  try {
    keep();
  } catch (error) {
    fail(error);
  }
});
document.getElementById("download").addEventListener("click", download);
document.getElementById("forget").addEventListener("click", () => {
  localStorage.removeItem(STORE);
  document.getElementById("kept").textContent = "Forgotten.";
  showKept();
});

start().catch(fail);
