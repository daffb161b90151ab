// Runs an .onnx model with onnxruntime-node on .npy inputs and writes every output as .npy (for
// piqc's export tests and bench/bench_int8.sh); optionally times --repeat runs (prints the median).
// Usage: node tests/tools/ort_run.js MODEL.onnx --input name=file.npy ... [--output-dir DIR]
//        [--threads N] [--repeat N] [--warmup N] [--no-optimize] [--save-optimized FILE.onnx]
'use strict';
const fs = require('fs');
const path = require('path');
const npy = require(path.join(__dirname, '..', '..', 'bench', 'npy.js'));

function die(msg, code = 1) {
  process.stderr.write(`ort_run: ${msg}\n`);
  process.exit(code);
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
    process.stdout.write(`median ${med.toFixed(med < 1 ? 5 : 3)} ms\n`);
  }
  if (o.outDir) {
    fs.mkdirSync(o.outDir, { recursive: true });
    for (const name of session.outputNames) {
      const safe = name.replace(/[^A-Za-z0-9._-]/g, '_');
      const file = path.join(o.outDir, `${safe === '' || safe === '.' || safe === '..' ? 'output' : safe}.npy`);
      try {
        npy.writeNpy(file, out[name]);
      } catch (e) {
        die(e.message);
      }
    }
  }
}

main();
