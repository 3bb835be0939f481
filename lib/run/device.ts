// `--device cpu | cuda[:N]`: which compute backend runs the engine. The CPU backend is
// always built; CUDA where the addon was compiled with it (backends()) and a usable GPU is
// present (cudaDevices()). The checks and their messages live in lib/vit.ts
// (resolveDevice), which createVit applies to its `device` option too.

import { resolveDevice } from '../vit';

export type Device = string;

export interface Backend {
  kind: 'cpu' | 'cuda';
  index: number;
}

/** Validates a device string against this build and machine: E_CONFIG with the reason
 *  (a malformed string, a build without the CUDA backend and how to build one, no usable
 *  CUDA device and why) instead of a silent fallback to the CPU. */
export function backendFor(device: Device): Backend {
  const d = resolveDevice(device);
  return { kind: d.kind, index: d.index };
}
