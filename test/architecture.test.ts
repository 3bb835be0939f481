// The shape of the code base (docs/architecture.md), checked so that it stays that way:
// no import cycles and the folders' layering in lib/ (dependency-cruiser, with the rules
// in .dependency-cruiser.cjs); native includes only downward (core ← cpu, cuda ← quant,
// synth ← binding); no source file over 600 lines, no function over 120.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const root = path.resolve(__dirname, '..');
const MAX_FILE_LINES = 600;
const MAX_FUNCTION_LINES = 120;

function walk(dir: string, pattern: RegExp, out: string[] = []): string[] {
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) walk(rel, pattern, out);
    else if (pattern.test(e.name)) out.push(rel);
  }
  return out;
}

test('lib/ has no import cycle and keeps its layering', () => {
  const bin = path.join(root, 'node_modules', '.bin', 'depcruise');
  let out = '';
  try {
    out = execFileSync(bin, ['lib', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd: root, encoding: 'utf8' });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`dependency-cruiser found violations:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
  expect(out).toMatch(/no dependency violations/);
}, 120_000);

test('native folders include only the layers below them', () => {
  // Which sibling folders each native folder may include from.
  const allowed: Record<string, string[]> = {
    core: [],
    cpu: ['core'],
    cuda: ['core'],
    quant: ['core', 'cpu'],
    synth: ['core', 'cpu', 'cuda'],
    binding: ['core', 'cpu', 'cuda', 'quant', 'synth'],
  };
  const wrong: string[] = [];
  for (const [folder, ok] of Object.entries(allowed)) {
    for (const f of walk(path.join('native', folder), /\.(h|cc|cu|cuh)$/)) {
      for (const m of fs.readFileSync(path.join(root, f), 'utf8').matchAll(/#include "\.\.\/([a-z]+)\//g)) {
        if (!ok.includes(m[1])) wrong.push(`${f} includes ../${m[1]}/`);
      }
    }
  }
  expect(wrong).toEqual([]);
});

const SOURCES = [...walk('lib', /\.ts$/), ...walk('scripts', /\.ts$/), ...walk('bench', /\.ts$/),
  ...['core', 'cpu', 'cuda', 'quant', 'synth', 'binding'].flatMap((d) => walk(path.join('native', d), /\.(h|cc|cu|cuh)$/))];

test(`no source file is over ${MAX_FILE_LINES} lines`, () => {
  const long = SOURCES.map((f) => [f, fs.readFileSync(path.join(root, f), 'utf8').split('\n').length] as const).filter(([, n]) => n > MAX_FILE_LINES);
  expect(long).toEqual([]);
});

test(`no TypeScript function is over ${MAX_FUNCTION_LINES} lines`, () => {
  const long: string[] = [];
  for (const f of SOURCES.filter((s) => s.endsWith('.ts'))) {
    const src = ts.createSourceFile(f, fs.readFileSync(path.join(root, f), 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node) => {
      if (ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isArrowFunction(n) || ts.isFunctionExpression(n)) {
        const a = src.getLineAndCharacterOfPosition(n.getStart()).line;
        const b = src.getLineAndCharacterOfPosition(n.getEnd()).line;
        if (b - a + 1 > MAX_FUNCTION_LINES) long.push(`${f}:${a + 1} (${b - a + 1} lines)`);
      }
      ts.forEachChild(n, visit);
    };
    visit(src);
  }
  expect(long).toEqual([]);
});

test(`no C++/CUDA function is over ${MAX_FUNCTION_LINES} lines`, () => {
  // A function body: a line ending in ") {" (the end of a signature) at namespace or class
  // level, to its matching brace; comments and string literals are blanked first.
  const long: string[] = [];
  for (const f of SOURCES.filter((s) => !s.endsWith('.ts'))) {
    const lines = fs.readFileSync(path.join(root, f), 'utf8').split('\n');
    let depth = 0;
    let start = -1;
    let base = 0;
    lines.forEach((raw, i) => {
      const s = raw.replace(/\/\/.*$/, '').replace(/"(\\.|[^"\\])*"/g, '""').replace(/'(\\.|[^'\\])*'/g, "''");
      const opens = (s.match(/\{/g) ?? []).length;
      const closes = (s.match(/\}/g) ?? []).length;
      if (start < 0 && opens > closes && /\)\s*(const)?\s*(override)?\s*(noexcept)?\s*\{\s*$/.test(s) && !/^\s*(if|for|while|switch|else|do)\b/.test(s) && !/\b(if|for|while|switch)\s*\(/.test(s.trim().slice(0, 12))) {
        start = i;
        base = depth;
      }
      depth += opens - closes;
      if (start >= 0 && depth <= base) {
        if (i - start + 1 > MAX_FUNCTION_LINES) long.push(`${f}:${start + 1} (${i - start + 1} lines)`);
        start = -1;
      }
    });
  }
  expect(long).toEqual([]);
});

test('the GPU tests (test/gpu, run only where a GPU is lent) type-check against today\'s API', () => {
  const files = fs.readdirSync(path.join(root, 'test', 'gpu')).filter((f) => f.endsWith('.ts')).map((f) => path.join('test', 'gpu', f));
  const tsc = path.join(root, 'node_modules', '.bin', 'tsc');
  try {
    execFileSync(tsc, ['--noEmit', '--esModuleInterop', '--skipLibCheck', '--strict', '--target', 'es2022', '--module', 'commonjs', '--moduleResolution', 'node', '--types', 'jest,node', ...files], { cwd: root, encoding: 'utf8' });
  } catch (err) {
    throw new Error(`test/gpu does not type-check:\n${(err as { stdout?: string }).stdout ?? ''}`);
  }
}, 120_000);
