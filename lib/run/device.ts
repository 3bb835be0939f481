// `--device cpu | cuda[:N]`: which compute backend runs the engine. The CPU backend is
// always built; CUDA only where the addon was compiled with it (see backends()).

import { SpdfqError } from '../errors';
import { nativeAddon } from '../native';

export type Device = string;

export interface Backend {
  kind: 'cpu' | 'cuda';
  index: number;
}

export function backendFor(device: Device): Backend {
  const m = /^(cpu|cuda)(?::(\d+))?$/.exec(device);
  if (!m) throw new SpdfqError('E_CONFIG', `device: expected 'cpu' or 'cuda[:N]', received '${device}'`);
  const kind = m[1] as 'cpu' | 'cuda';
  const available = nativeAddon().backends();
  if (!available.includes(kind)) {
    throw new SpdfqError(
      'E_CONFIG',
      `device '${device}': this build of spdfq-native supports ${available.join(', ')}; the CUDA kernels exist (native/cuda) but are not yet wired into the engine (docs/cuda.md)`,
    );
  }
  return { kind, index: m[2] ? Number(m[2]) : 0 };
}
