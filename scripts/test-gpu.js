#!/usr/bin/env node
// `npm run test:gpu`: checks the CUDA backend against the CPU engine, on a machine with an
// NVIDIA GPU and an addon built with CUDA. Not part of `npm test`.
//
//   1. gate: the addon must list 'cuda' in backends() and a CUDA device must be present;
//      otherwise this prints why and exits 1 (it never passes silently without a GPU);
//   2. the op checker (test/gpu/check_*.cu): builds it with nvcc against the CPU engine and
//      the CUDA sources, then compares every CUDA op and the CUDA model with the CPU
//      reference, on every engine fixture's shapes (test/fixtures/engine) plus built-in ones;
//   3. the API tests (test/gpu/*.gpu.ts, jest): createVit(..., { device: 'cuda:0' }) against
//      the PyTorch fixtures, the CPU model, and the error paths (engine.gpu.ts); data-free
//      synthesis on CUDA against the CPU in FP32 and TF32 (synth.gpu.ts); `run` with
//      --device cuda end to end (run.gpu.ts).
//
// Options: --bench (also print GEMM rates and DeiT step times), --batch N (bench batch),
//          --only ops|api, --jobs N (parallel compiles; default: CPU count),
//          --build-only (compile and link the op checker without a GPU; runs nothing).
// Environment: NVCC (default nvcc), CXX (default g++), SPDFQ_TEST_DEVICE (default cuda:0),
//              SPDFQ_ADDON (the addon to test, as lib/native.ts; default build/Release/spdfq_native.node).
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = opt('--only');
const bench = args.includes('--bench');
const jobs = Math.max(1, Number(opt('--jobs') ?? os.cpus().length));
const buildOnly = args.includes('--build-only'); // compile and link the checker, run nothing (no GPU needed)
const nvcc = process.env.NVCC || 'nvcc';
const cxx = process.env.CXX || 'g++';

function stop(msg) {
  console.error(`test:gpu: ${msg}`);
  process.exit(1);
}

function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...options });
  if (r.error) return { status: 127, error: r.error };
  return { status: r.status ?? 1 };
}

// The addon under test (the API tests load the same one through lib/native.ts), and the
// cmake-js build folder it came from (whose libspdfq_core.a the op checker links).
const addonPath = process.env.SPDFQ_ADDON
  ? path.resolve(process.env.SPDFQ_ADDON)
  : path.join(root, 'build', 'Release', 'spdfq_native.node');
const buildDir = path.dirname(path.dirname(addonPath));

// ---- 1. gate -------------------------------------------------------------------------
function gate() {
  let addon;
  try {
    addon = require(addonPath);
  } catch (err) {
    stop(`the addon ${path.relative(root, addonPath)} is not built or does not load (${err.message}); run npm install first`);
  }
  const backends = addon.backends();
  if (!backends.includes('cuda') || typeof addon.cudaDevices !== 'function') {
    stop(
      `this build of spdfq-native has no CUDA backend (backends(): ${backends.join(', ')}). ` +
        'Rebuild on a machine with the CUDA toolkit (nvcc 12 or newer): npx cmake-js compile --CDSPDFQ_CUDA=ON',
    );
  }
  const info = addon.cudaDevices();
  if (info.count === 0) stop(`no usable CUDA device: ${info.reason || 'none found'}`);
  const gib = (b) => (b / 2 ** 30).toFixed(0);
  for (const d of info.devices) {
    console.log(
      `test:gpu: cuda:${d.index} ${d.name}, compute capability ${d.computeCapability}, ${d.multiprocessors} SMs, ` +
        `${gib(d.memoryBytes)} GiB${d.usable ? '' : ' (older than sm_80: not usable)'}`,
    );
  }
}

const failures = [];

// ---- 2. the op checker ------------------------------------------------------------------
function listFiles(dir, re) {
  return fs
    .readdirSync(path.join(root, dir))
    .filter((f) => re.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

// Runs commands with up to `jobs` in flight; resolves to the number that failed.
function parallel(commands) {
  return new Promise((resolve) => {
    const { spawn } = require('child_process');
    let next = 0;
    let running = 0;
    let failed = 0;
    const start = () => {
      while (running < jobs && next < commands.length) {
        const [cmd, argv, label] = commands[next++];
        running++;
        const p = spawn(cmd, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (out += d));
        p.on('close', (code) => {
          running--;
          if (code !== 0) {
            failed++;
            console.error(`test:gpu: compiling ${label} failed:\n${out}`);
          }
          if (next >= commands.length && running === 0) resolve(failed);
          else start();
        });
        p.on('error', (err) => {
          out += String(err);
        });
      }
      if (commands.length === 0) resolve(0);
    };
    start();
  });
}

function fixtureSpecs() {
  const dir = path.join(root, 'test', 'fixtures', 'engine');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const meta = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      const fields = { name: f.slice(0, -5), ...meta.config, batch: meta.batch };
      return Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'boolean' ? (v ? 1 : 0) : v}`)
        .join(',');
    });
}

async function opChecker() {
  const out = path.join(buildDir, 'gpu-check');
  fs.mkdirSync(out, { recursive: true });
  const probe = spawnSync(nvcc, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return stop(`nvcc not found (${nvcc}): the op checker is compiled here`);

  // The CPU engine: the cmake-js build's static library, or compiled here.
  let coreLib = path.join(buildDir, 'libspdfq_core.a');
  if (!fs.existsSync(coreLib)) {
    coreLib = path.join(out, 'libspdfq_core_check.a');
    const sources = ['native/core', 'native/cpu', 'native/quant', 'native/synth'].flatMap((d) => listFiles(d, /\.cc$/));
    const isa = (f) =>
      /_avx512\.cc$/.test(f)
        ? ['-mavx512f', '-mavx512vl', '-mavx512bw', '-mavx512dq', '-mavx512vnni', '-mfma', '-mavx2']
        : /_avx2\.cc$/.test(f)
          ? ['-mavx2', '-mfma']
          : [];
    const objs = sources.map((f) => path.join(out, f.replace(/[\\/]/g, '_') + '.o'));
    const failed = await parallel(
      sources.map((f, i) => [cxx, ['-std=c++17', '-O2', '-fPIC', '-pthread', ...isa(f), '-c', f, '-o', objs[i]], f]),
    );
    if (failed) return stop('the CPU engine did not compile');
    fs.rmSync(coreLib, { force: true });
    if (run('ar', ['rcs', coreLib, ...objs]).status !== 0) return stop('ar failed');
  }

  // The CUDA sources and the checker, for the GPU present (-arch=native), falling back to
  // the build's default architectures when this nvcc cannot detect it.
  const cuda = [...listFiles('native/cuda', /\.cu$/), ...listFiles('test/gpu', /\.cu$/)];
  const probeSrc = path.join(out, 'arch_probe.cu');
  fs.writeFileSync(probeSrc, '__global__ void spdfq_probe() {}\n');
  const archProbe = spawnSync(nvcc, ['-arch=native', '-c', probeSrc, '-o', probeSrc + '.o'], { encoding: 'utf8' });
  const arch =
    archProbe.status === 0 && !buildOnly
      ? ['-arch=native']
      : ['-gencode', 'arch=compute_90a,code=sm_90a', '-gencode', 'arch=compute_80,code=sm_80'];
  const cobjs = cuda.map((f) => path.join(out, f.replace(/[\\/]/g, '_') + '.o'));
  const flags = ['-std=c++17', '-O3', ...arch, '-Inative/cuda', '-Xcompiler', '-fPIC'];
  const failed = await parallel(cuda.map((f, i) => [nvcc, [...flags, '-c', f, '-o', cobjs[i]], f]));
  if (failed) return stop('the CUDA sources or the checker did not compile');
  const exe = path.join(out, 'cuda_ops_check');
  if (run(nvcc, [...arch, '-o', exe, ...cobjs, coreLib, '-lpthread']).status !== 0) return stop('linking the checker failed');
  if (buildOnly) {
    console.log(`test:gpu: built ${path.relative(root, exe)} (--build-only: nothing run)`);
    return;
  }

  if (bench) {
    const b = opt('--batch');
    run(exe, ['--bench', ...(b ? ['--batch', b] : [])]);
  }
  const specArgs = fixtureSpecs().flatMap((s) => ['--spec', s]);
  const r = run(exe, specArgs);
  if (r.status === 2) stop('the op checker found no usable CUDA device (see above)');
  if (r.status !== 0) failures.push('op checker (test/gpu/check_*.cu)');
}

// ---- 3. the API tests -------------------------------------------------------------------
function apiTests() {
  const jest = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'jest.cmd' : 'jest');
  const r = run(jest, ['--config', 'test/gpu/jest.config.js', '--runInBand'], { env: { ...process.env, SPDFQ_ADDON: addonPath } });
  if (r.status !== 0) failures.push('API tests (test/gpu/*.gpu.ts)');
}

(async () => {
  if (buildOnly) return opChecker();
  gate();
  if (!only || only === 'ops') await opChecker();
  if (!only || only === 'api') apiTests();
  if (failures.length) {
    console.error(`test:gpu: FAILED: ${failures.join('; ')}`);
    process.exit(1);
  }
  console.log('test:gpu: all CUDA checks passed');
})().catch((err) => stop(err && err.stack ? err.stack : String(err)));
