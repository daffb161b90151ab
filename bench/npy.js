// .npy files for the onnxruntime-node scripts (bench/ort_bench.js, tests/tools/ort_run.js): read one
// into {type, data, shape} for ort.Tensor, write an output tensor, and build a session's feeds from
// `--input [name=]file.npy` pairs. Formats v1/v2/v3, C order, little-endian (or byte-agnostic)
// f4/f8/i8/i4/u1/i1/b1. Errors are thrown as Error, the message naming the file or input.
'use strict';
const fs = require('fs');

// .npy dtype code -> [onnxruntime type, typed array constructor]
const NPY_TYPES = {
  f4: ['float32', Float32Array], f8: ['float64', Float64Array], i8: ['int64', BigInt64Array],
  i4: ['int32', Int32Array], u1: ['uint8', Uint8Array], i1: ['int8', Int8Array], b1: ['bool', Uint8Array],
};
const ORT_TO_NPY = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', uint8: '|u1', int8: '|i1', bool: '|b1' };

function fail(msg) {
  throw new Error(msg);
}

function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY')
    fail(`${file}: not a .npy file (bad magic)`);
  const major = buf.readUInt8(6);
  let hlen, hstart;
  if (major === 1) {
    hlen = buf.readUInt16LE(8);
    hstart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) fail(`${file}: truncated header`);
    hlen = buf.readUInt32LE(8);
    hstart = 12;
  } else {
    fail(`${file}: unsupported .npy version ${major}`);
  }
  if (hstart + hlen > buf.length) fail(`${file}: truncated header`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', hstart, hstart + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeM) fail(`${file}: cannot parse header ${JSON.stringify(header)}`);
  if (fortran[1] === 'True') fail(`${file}: Fortran-order arrays are not supported`);
  const d = descr[1];
  const order = d[0], code = d.slice(1);
  if (!'<|='.includes(order) || !(code in NPY_TYPES))
    fail(`${file}: unsupported dtype '${d}' (want little-endian f4, f8, i8, i4, u1, i1 or b1)`);
  const shape = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s.length).map((s) => {
    if (!/^\d+$/.test(s)) fail(`${file}: bad shape entry '${s}'`);
    return Number(s);
  });
  const [type, Ctor] = NPY_TYPES[code];
  const count = shape.reduce((a, b) => a * b, 1);
  const off = hstart + hlen, nbytes = count * Ctor.BYTES_PER_ELEMENT;
  if (buf.length - off < nbytes) fail(`${file}: data has ${buf.length - off} bytes, shape needs ${nbytes}`);
  const ab = new ArrayBuffer(nbytes); // copy: typed arrays need aligned offsets
  new Uint8Array(ab).set(buf.subarray(off, off + nbytes));
  return { type, data: new Ctor(ab), shape };
}

// Writes an onnxruntime tensor ({type, dims, data}) as a v1 .npy file.
function writeNpy(file, tensor) {
  const descr = ORT_TO_NPY[tensor.type];
  if (!descr) fail(`output type ${tensor.type} cannot be written as .npy`);
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

// The feeds of session from [name or null, file.npy] pairs (null: the model's only input); every
// model input must be given.
function npyFeeds(ort, session, inputs) {
  const feeds = {};
  const names = session.inputNames.join(', ');
  for (const [name0, file] of inputs) {
    let name = name0;
    if (name === null) {
      if (session.inputNames.length !== 1) fail(`--input ${file}: name it (model inputs: ${names})`);
      name = session.inputNames[0];
    }
    if (!session.inputNames.includes(name)) fail(`--input ${name}: model has no such input (inputs: ${names})`);
    const a = readNpy(file);
    feeds[name] = new ort.Tensor(a.type, a.data, a.shape);
  }
  for (const n of session.inputNames) if (!(n in feeds)) fail(`missing --input for model input '${n}'`);
  return feeds;
}

module.exports = { readNpy, writeNpy, npyFeeds };
