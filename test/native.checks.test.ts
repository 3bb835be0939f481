// The standalone native checkers (native/tests): every fp32 GEMM variant against gemm_ref
// on awkward shapes with guard pages, and the integer GEMMs / quantized Linear against
// their reference and the fake-quant simulation. Built from the same sources with the
// build's per-file ISA flags, run here so that `npm test` covers them.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

function buildAndRun(script: string, binary: string, outVar: string): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `spdfq-${binary}-`));
  try {
    execFileSync('bash', [path.join(root, 'native', 'tests', script)], { env: { ...process.env, [outVar]: out }, stdio: 'pipe' });
    // The checkers exit 1 on any failure; execFileSync throws then, with their output.
    return execFileSync(path.join(out, binary), [], { encoding: 'utf8', maxBuffer: 64 << 20 });
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

test.each([
  ['build_gemm_check.sh', 'gemm_check', 'GEMM_CHECK_OUT'],
  ['build_qgemm_check.sh', 'qgemm_check', 'QGEMM_CHECK_OUT'],
])('%s: every case passes', (script, binary, outVar) => {
  const log = buildAndRun(script, binary, outVar);
  const m = /(\d+) passed, (\d+) failed\s*$/.exec(log);
  expect(m).not.toBeNull();
  expect(Number(m![2])).toBe(0);
  expect(Number(m![1])).toBeGreaterThan(1000);
}, 600_000);
