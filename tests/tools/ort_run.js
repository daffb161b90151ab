// Runs an .onnx model with onnxruntime-node on .npy inputs and writes every output as .npy (for
// piqc's export tests and bench/bench_int8.sh); optionally times --repeat runs (prints the median).
// Usage: node tests/tools/ort_run.js MODEL.onnx --input name=file.npy ... [--output-dir DIR]
//        [--threads N] [--repeat N] [--warmup N] [--no-optimize] [--save-optimized FILE.onnx]
'use strict';
const fs = require('fs');
const path = require('path');

function die(msg, code = 1) {
  process.stderr.write(`ort_run: ${msg}\n`);
  process.exit(code);
}

// .npy dtype code -> [onnxruntime type, typed array constructor]
const NPY_TYPES = {
  f4: ['float32', Float32Array], f8: ['float64', Float64Array], i8: ['int64', BigInt64Array],
  i4: ['int32', Int32Array], u1: ['uint8', Uint8Array], i1: ['int8', Int8Array], b1: ['bool', Uint8Array],
};
const ORT_TO_NPY = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', uint8: '|u1', int8: '|i1', bool: '|b1' };

function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    die(`${file}: ${e.message}`);
  }
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY')
    die(`${file}: not a .npy file (bad magic)`);
  const major = buf.readUInt8(6);
  let hlen, hstart;
  if (major === 1) [hlen, hstart] = [buf.readUInt16LE(8), 10];
  else if (major === 2 || major === 3) [hlen, hstart] = [buf.readUInt32LE(8), 12];
  else die(`${file}: unsupported .npy version ${major}`);
  if (hstart + hlen > buf.length) die(`${file}: truncated header`);
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeM) die(`${file}: cannot parse header ${JSON.stringify(header)}`);
  if (fortran[1] === 'True') die(`${file}: Fortran-order arrays are not supported`);
  const order = descr[1][0], code = descr[1].slice(1);
  if (!'<|='.includes(order) || !(code in NPY_TYPES)) die(`${file}: unsupported dtype '${descr[1]}'`);
  const shape = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) die(`${file}: bad shape ${shapeM[1]}`);
  const [type, Ctor] = NPY_TYPES[code];
  const count = shape.reduce((a, b) => a * b, 1);
  const off = hstart + hlen, nbytes = count * Ctor.BYTES_PER_ELEMENT;
  if (buf.length - off < nbytes) die(`${file}: data has ${buf.length - off} bytes, shape needs ${nbytes}`);
  const ab = new ArrayBuffer(nbytes);
  new Uint8Array(ab).set(buf.subarray(off, off + nbytes));
  return { type, data: new Ctor(ab), shape };
}

function writeNpy(file, tensor) {
  const descr = ORT_TO_NPY[tensor.type];
  if (!descr) die(`output type ${tensor.type} cannot be written as .npy`);
  const dims = tensor.dims.map(Number);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.writeUInt8(0x93, 0);
  pre.write('NUMPY', 1, 'latin1');
  pre.writeUInt8(1, 6);
  pre.writeUInt8(0, 7);
  pre.writeUInt16LE(header.length, 8);
  const d = tensor.data;
  const body = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

function parseArgs(argv) {
  const o = { model: null, inputs: [], outDir: null, threads: 1, repeat: 0, warmup: 2, optimize: true, saveOptimized: null };
  const need = (i, f) => (i + 1 < argv.length ? argv[i + 1] : die(`${f} needs a value`));
  const int = (s, f) => (/^\d+$/.test(s) ? Number(s) : die(`${f}: bad value '${s}'`));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--input') {
      const s = need(i++, a), eq = s.indexOf('=');
      o.inputs.push(eq < 0 ? [null, s] : [s.slice(0, eq), s.slice(eq + 1)]);
    } else if (a === '--output-dir') o.outDir = need(i++, a);
    else if (a === '--threads') o.threads = int(need(i++, a), a);
    else if (a === '--repeat') o.repeat = int(need(i++, a), a);
    else if (a === '--warmup') o.warmup = int(need(i++, a), a);
    else if (a === '--no-optimize') o.optimize = false;
    else if (a === '--save-optimized') o.saveOptimized = need(i++, a);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node tests/tools/ort_run.js MODEL.onnx --input name=file.npy ... ' +
        '[--output-dir DIR] [--threads N] [--repeat N] [--warmup N] [--no-optimize] [--save-optimized FILE]\n');
      process.exit(0);
    } else if (a.startsWith('-')) die(`unknown option '${a}'`);
    else if (o.model === null) o.model = a;
    else die(`unexpected argument '${a}'`);
  }
  if (o.model === null) die('no model given');
  if (o.threads < 1) die('--threads must be at least 1');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    die(`cannot load onnxruntime-node (run: ONNXRUNTIME_NODE_INSTALL=skip npm install): ${e.message}`, 77);
  }
  let session;
  try {
    session = await ort.InferenceSession.create(o.model, {
      intraOpNumThreads: o.threads, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: o.optimize ? 'all' : 'disabled',
      ...(o.saveOptimized ? { optimizedModelFilePath: o.saveOptimized } : {}),
    });
  } catch (e) {
    die(`${o.model}: ${e.message}`);
  }
  const feeds = {};
  for (const [name0, file] of o.inputs) {
    let name = name0;
    if (name === null) {
      if (session.inputNames.length !== 1) die(`--input ${file}: name it (inputs: ${session.inputNames.join(', ')})`);
      name = session.inputNames[0];
    }
    if (!session.inputNames.includes(name)) die(`--input ${name}: no such input (inputs: ${session.inputNames.join(', ')})`);
    const a = readNpy(file);
    feeds[name] = new ort.Tensor(a.type, a.data, a.shape);
  }
  for (const n of session.inputNames) if (!(n in feeds)) die(`missing --input for model input '${n}'`);
  const run = async () => {
    try {
      return await session.run(feeds);
    } catch (e) {
      return die(`run failed: ${e.message}`);
    }
  };
  let out = await run();
  if (o.repeat > 0) {
    for (let i = 0; i < o.warmup; i++) out = await run();
    const t = [];
    for (let i = 0; i < o.repeat; i++) {
      const t0 = process.hrtime.bigint();
      out = await run();
      t.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    t.sort((a, b) => a - b);
    const n = t.length, med = n % 2 ? t[(n - 1) / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    process.stdout.write(`median ${med.toFixed(3)} ms\n`);
  }
  if (o.outDir) {
    fs.mkdirSync(o.outDir, { recursive: true });
    for (const name of session.outputNames) {
      const safe = name.replace(/[^A-Za-z0-9._-]/g, '_');
      writeNpy(path.join(o.outDir, `${safe === '' || safe === '.' || safe === '..' ? 'output' : safe}.npy`), out[name]);
    }
  }
}

main();
