// Per-node profile of onnxruntime-node for bench/conv_layers.sh: runs MODEL.onnx on one .npy input
// at one intra-op thread (inter-op 1, sequential, graph optimizations on, as bench/ort_bench.js)
// with enableProfiling, and prints the path of the JSON profile onnxruntime writes.
// Usage: node bench/ort_profile.js MODEL.onnx INPUT_NAME=FILE.npy PREFIX [RUNS]
'use strict';
const path = require('path');
const npy = require(path.join(__dirname, 'npy.js'));

async function main() {
  const [model, inputArg, prefix, runsArg] = process.argv.slice(2);
  if (!model || !inputArg || !prefix) {
    process.stderr.write('usage: node bench/ort_profile.js MODEL.onnx INPUT_NAME=FILE.npy PREFIX [RUNS]\n');
    process.exit(2);
  }
  const eq = inputArg.indexOf('=');
  if (eq < 0) {
    process.stderr.write(`ort_profile: input '${inputArg}' is not NAME=FILE.npy\n`);
    process.exit(2);
  }
  const runs = runsArg ? Number(runsArg) : 30;
  const ort = require('onnxruntime-node');
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: prefix,
  });
  const feeds = npy.npyFeeds(ort, session, [[inputArg.slice(0, eq), inputArg.slice(eq + 1)]]);
  for (let i = 0; i < runs; i++) await session.run(feeds);
  const file = session.endProfiling();
  // onnxruntime-node 1.30 returns nothing here: the newest PREFIX_*.json is the profile
  if (file) {
    process.stdout.write(`${file}\n`);
  } else {
    const fs = require('fs');
    const dir = path.dirname(path.resolve(prefix)), base = path.basename(prefix);
    const found = fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json'))
      .map((f) => path.join(dir, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
    if (!found.length) {
      process.stderr.write('ort_profile: no profile written\n');
      process.exit(1);
    }
    process.stdout.write(`${found[0]}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`ort_profile: ${e.message}\n`);
  process.exit(1);
});
