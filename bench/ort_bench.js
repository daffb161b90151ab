// onnxruntime-node baseline for piqc's side-by-side benchmarks: runs MODEL.onnx on .npy inputs with
// --threads intra-op threads (default 1; inter-op 1, sequential) and prints `median X.XXX ms` over
// --repeat timed runs after --warmup untimed ones.
// Usage: node bench/ort_bench.js MODEL.onnx --input name=file.npy ... [--threads N] [--repeat N]
//        [--warmup N] [--expect name=file.npy ...] [--rtol R] [--atol A] [--verbose]
'use strict';
const path = require('path');
const npy = require(path.join(__dirname, 'npy.js'));

function die(msg) {
  process.stderr.write(`ort_bench: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const o = { model: null, inputs: [], expects: [], threads: 1, repeat: 20, warmup: 3, rtol: 1e-4, atol: 1e-5, verbose: false };
  const need = (i, flag) => {
    if (i + 1 >= argv.length) die(`${flag} needs a value`);
    return argv[i + 1];
  };
  const pair = (s, flag) => {
    const eq = s.indexOf('=');
    return eq < 0 ? [null, s] : [s.slice(0, eq), s.slice(eq + 1)];
  };
  const num = (s, flag, int) => {
    const v = Number(s);
    if (!Number.isFinite(v) || (int && (!Number.isInteger(v) || v < 0))) die(`${flag}: bad value '${s}'`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--input') o.inputs.push(pair(need(i, a), a)), i++;
    else if (a === '--expect') o.expects.push(pair(need(i, a), a)), i++;
    else if (a === '--threads') o.threads = num(need(i, a), a, true), i++;
    else if (a === '--repeat') o.repeat = num(need(i, a), a, true), i++;
    else if (a === '--warmup') o.warmup = num(need(i, a), a, true), i++;
    else if (a === '--rtol') o.rtol = num(need(i, a), a, false), i++;
    else if (a === '--atol') o.atol = num(need(i, a), a, false), i++;
    else if (a === '--verbose' || a === '-v') o.verbose = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node bench/ort_bench.js MODEL.onnx --input name=file.npy ... [--threads N] [--repeat N] ' +
        '[--warmup N] [--expect name=file.npy ...] [--rtol R] [--atol A] [--verbose]\n');
      process.exit(0);
    } else if (a.startsWith('-')) die(`unknown option '${a}'`);
    else if (o.model === null) o.model = a;
    else die(`unexpected argument '${a}'`);
  }
  if (o.model === null) die('no model given (usage: node bench/ort_bench.js MODEL.onnx --input name=file.npy ...)');
  if (o.repeat < 1) die('--repeat must be at least 1');
  if (o.threads < 1) die('--threads must be at least 1');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    die(`cannot load onnxruntime-node (run: ONNXRUNTIME_NODE_INSTALL=skip npm install): ${e.message}`);
  }
  let session;
  try {
    session = await ort.InferenceSession.create(o.model, {
      intraOpNumThreads: o.threads, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    die(`${o.model}: ${e.message}`);
  }
  let feeds;
  try {
    feeds = npy.npyFeeds(ort, session, o.inputs);
  } catch (e) {
    die(e.message);
  }

  const run = async () => {
    try {
      return await session.run(feeds);
    } catch (e) {
      die(`run failed: ${e.message}`);
    }
  };
  let out;
  for (let i = 0; i < o.warmup; i++) out = await run();
  const times = [];
  for (let i = 0; i < o.repeat; i++) {
    const t0 = process.hrtime.bigint();
    out = await run();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const n = times.length;
  const median = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;

  let failed = false;
  for (const [name0, file] of o.expects) {
    const name = name0 === null ? session.outputNames[0] : name0;
    if (!(name in out)) die(`--expect ${name}: model has no such output (outputs: ${session.outputNames.join(', ')})`);
    let want;
    try {
      want = npy.readNpy(file);
    } catch (e) {
      die(e.message);
    }
    const got = out[name];
    if (want.shape.join(',') !== got.dims.join(',')) {
      process.stderr.write(`ort_bench: ${name}: shape [${got.dims}] != expected [${want.shape}]\n`);
      failed = true;
      continue;
    }
    let maxAbs = 0, bad = 0;
    for (let i = 0; i < want.data.length; i++) {
      const w = Number(want.data[i]), g = Number(got.data[i]);
      const d = Math.abs(w - g);
      if (!(d <= o.atol + o.rtol * Math.abs(w))) bad++;
      if (d > maxAbs || Number.isNaN(d)) maxAbs = d;
    }
    process.stderr.write(`ort_bench: ${name}: max |diff| ${maxAbs.toExponential(3)}, ${bad} of ${want.data.length} outside rtol ${o.rtol} atol ${o.atol}\n`);
    if (bad) failed = true;
  }
  if (o.verbose)
    process.stderr.write(`ort_bench: ${n} runs: min ${times[0].toFixed(3)} ms, max ${times[n - 1].toFixed(3)} ms\n`);
  process.stdout.write(`median ${median.toFixed(median < 1 ? 5 : 3)} ms\n`);
  process.exit(failed ? 1 : 0);
}

main();
