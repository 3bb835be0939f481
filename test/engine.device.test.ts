// The `device` option on a machine without a GPU: what the build offers (backends(),
// cudaDevices()), malformed device strings (expected vs. received), and the two ways CUDA
// can be missing — a build without the CUDA backend, or a CUDA build with no usable device —
// each a clear E_CONFIG that says why, from the TypeScript layer and from the native one,
// never a silent CPU run and never a crash. Which branch runs depends on the addon under
// test: `npm test` uses the default build; SPDFQ_ADDON=build-cuda/Release/spdfq_native.node
// runs the same file against a CUDA build. On a GPU, test/gpu/engine.gpu.ts takes over.

import { createVit, randomVitWeights, resolveDevice } from '../lib/vit';
import { backendFor } from '../lib/run/device';
import { nativeAddon } from '../lib/native';
import { completeVitConfig, VitConfigInput, vitParamSpecs } from '../lib/vit-config';

const SMALL: VitConfigInput = { imageSize: 16, channels: 3, patchSize: 4, embedDim: 24, depth: 2, numHeads: 3, numClasses: 5 };

const addon = nativeAddon();
const builtWithCuda = addon.backends().includes('cuda');
const cuda = addon.cudaDevices();
const testCpuOnlyBuild = builtWithCuda ? test.skip : test;
const testCudaBuildWithoutGpu = builtWithCuda && cuda.devices.length === 0 ? test : test.skip;

function nativeParams(): { full: ReturnType<typeof completeVitConfig>; params: Float32Array } {
  const full = completeVitConfig(SMALL);
  const n = vitParamSpecs(full).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  return { full, params: new Float32Array(n) };
}

test('backends() lists the CPU, and cudaDevices() always answers without throwing', () => {
  expect(addon.backends()).toContain('cpu');
  expect(typeof cuda.count).toBe('number');
  expect(typeof cuda.reason).toBe('string');
  expect(Array.isArray(cuda.devices)).toBe(true); // an addon-made array: not `instanceof` this realm's Array
  if (cuda.count === 0) expect(cuda.reason.length).toBeGreaterThan(0);
  for (const d of cuda.devices) {
    expect(d).toEqual({
      index: expect.any(Number),
      name: expect.any(String),
      computeCapability: expect.stringMatching(/^\d+\.\d+$/),
      memoryBytes: expect.any(Number),
      multiprocessors: expect.any(Number),
      usable: expect.any(Boolean),
    });
  }
});

test("the default device is the CPU, and model.device says so", async () => {
  const w = randomVitWeights(SMALL, 1);
  const a = await createVit(SMALL, w, { threads: 1 });
  const b = await createVit(SMALL, w, { threads: 1, device: 'cpu' });
  expect(a.device).toBe('cpu');
  expect(b.device).toBe('cpu');
  const x = new Float32Array(2 * 3 * 16 * 16).map((_, i) => Math.sin(i));
  expect((await b.forward(x, 2)).logits).toEqual((await a.forward(x, 2)).logits);
  await a.dispose();
  await b.dispose();
});

test.each([
  ['gpu', "'gpu'"],
  ['cuda:-1', "'cuda:-1'"],
  ['cuda:x', "'cuda:x'"],
  ['cuda:', "'cuda:'"],
  ['CUDA', "'CUDA'"],
  ['cpu:1', "'cpu:1'"],
  ['cuda:99999999999', "'cuda:99999999999'"],
  [7, 'number'],
  [{}, 'object'],
])('device %p is refused with expected vs received', async (device, received) => {
  const message = `device: expected 'cpu' or 'cuda[:N]', received ${received}`;
  await expect(createVit(SMALL, randomVitWeights(SMALL, 1), { device: device as never })).rejects.toMatchObject({ code: 'E_CONFIG', message });
  expect(() => backendFor(device as string)).toThrow(message);
});

test('the native constructor re-checks the device string', () => {
  const { full, params } = nativeParams();
  const Native = addon.VitModel;
  expect(() => new Native(full, params, 1, 'gpu')).toThrow("device: expected 'cpu', 'cuda' or 'cuda:N' (N a device index), received 'gpu'");
  expect(() => new Native(full, params, 1, 3 as unknown as string)).toThrow(/device: expected a string/);
  const m = new Native(full, params, 1, 'cpu');
  expect(m.device()).toBe('cpu');
  m.dispose();
});

testCpuOnlyBuild('CPU-only build: a CUDA device is a clear error saying how to build the CUDA backend', async () => {
  expect(addon.backends()).toEqual(['cpu']);
  expect(cuda.count).toBe(0);
  expect(cuda.devices).toHaveLength(0);
  expect(cuda.reason).toMatch(/no CUDA backend/);
  const expected = /device 'cuda': this build of spdfq-native supports cpu only; it was compiled without the CUDA backend\. To run on a GPU, rebuild it on a machine with the CUDA toolkit .*--CDSPDFQ_CUDA=ON/;
  await expect(createVit(SMALL, randomVitWeights(SMALL, 1), { device: 'cuda' })).rejects.toThrow(expected);
  await expect(createVit(SMALL, randomVitWeights(SMALL, 1), { device: 'cuda:1' })).rejects.toMatchObject({ code: 'E_CONFIG' });
  expect(() => backendFor('cuda:0')).toThrow(/device 'cuda:0': this build of spdfq-native supports cpu only/);
  // The native layer refuses too, should the TypeScript check be bypassed.
  const { full, params } = nativeParams();
  expect(() => new addon.VitModel(full, params, 1, 'cuda:0')).toThrow(/device 'cuda:0': this build of spdfq-native has no CUDA backend/);
});

testCudaBuildWithoutGpu('CUDA build without a usable GPU: a clear error naming the reason', async () => {
  // Run once by hand with SPDFQ_ADDON=build-cuda/Release/spdfq_native.node on a machine
  // with nvcc and no GPU (docs/cuda.md quotes the message).
  expect(cuda.count).toBe(0);
  expect(cuda.reason).not.toBe('');
  const reason = cuda.reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await expect(createVit(SMALL, randomVitWeights(SMALL, 1), { device: 'cuda:0' })).rejects.toMatchObject({
    code: 'E_CONFIG',
    message: expect.stringMatching(new RegExp(`^device 'cuda:0': this build of spdfq-native supports cpu and cuda, but no CUDA device was found \\(${reason}\\)$`)),
  });
  expect(() => backendFor('cuda')).toThrow(/^device 'cuda': this build of spdfq-native supports cpu and cuda, but no CUDA device was found \(.+\)$/);
  expect(() => resolveDevice('cuda:3')).toThrow(/no CUDA device was found/);
  // The native constructor asks the CUDA runtime itself (no driver here): a coded error, not a crash.
  const { full, params } = nativeParams();
  let err: (Error & { code?: string }) | undefined;
  try {
    new addon.VitModel(full, params, 1, 'cuda:0');
  } catch (e) {
    err = e as Error & { code?: string };
  }
  expect(err?.code).toBe('E_CONFIG');
  expect(err?.message).toMatch(/^device 'cuda:0': no CUDA device is usable \(.+\)$/);
  // The process and the CPU engine carry on.
  const m = await createVit(SMALL, randomVitWeights(SMALL, 1), { threads: 1 });
  expect((await m.forward(new Float32Array(3 * 16 * 16), 1)).logits).toHaveLength(5);
  await m.dispose();
});
