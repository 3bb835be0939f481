// torchvision 0.14's Swin index arithmetic, written out in TypeScript so that the ONNX
// import can check what a graph computes against it: the window partition (pad at the
// bottom/right, roll by −shift, cut into windows), the shift mask, the relative position
// index, and PatchMerging's 2×2 gather. Each follows torchvision/models/swin_transformer.py
// line by line (docs/swin.md, "Layout choices"); the native engine derives the same tables
// in native/core/swin_params.cc.

/** torchvision's value for attention logits between tokens of different shifted regions. */
export const SWIN_MASK_VALUE = -100;

export interface WindowGeometry {
  /** The token grid of the stage. */
  height: number;
  width: number;
  window: [number, number];
  /** Grid padded to a multiple of the window. */
  padHeight: number;
  padWidth: number;
  /** The shift actually applied (0 along an axis the window covers). */
  shift: [number, number];
  windowsY: number;
  windowsX: number;
  /** Tokens per window. */
  tokens: number;
}

/** shifted_window_attention's geometry; `shifted` is torchvision's odd-block rule. */
export function windowGeometry(height: number, width: number, window: [number, number], shifted: boolean): WindowGeometry {
  const [wh, ww] = window;
  const padHeight = height + ((wh - (height % wh)) % wh);
  const padWidth = width + ((ww - (width % ww)) % ww);
  // "If window size is larger than feature size, there is no need to shift window"
  const shift: [number, number] = [shifted && wh < padHeight ? Math.floor(wh / 2) : 0, shifted && ww < padWidth ? Math.floor(ww / 2) : 0];
  return { height, width, window, padHeight, padWidth, shift, windowsY: padHeight / wh, windowsX: padWidth / ww, tokens: wh * ww };
}

/** For every window token (window-major, then row-major inside the window) the grid token
 *  (y·width + x) it reads, or −1 for a padding token (zeros). */
export function windowSources(g: WindowGeometry): Int32Array {
  const [wh, ww] = g.window;
  const out = new Int32Array(g.windowsY * g.windowsX * g.tokens);
  let k = 0;
  for (let wy = 0; wy < g.windowsY; wy++) {
    for (let wx = 0; wx < g.windowsX; wx++) {
      for (let iy = 0; iy < wh; iy++) {
        for (let ix = 0; ix < ww; ix++) {
          // torch.roll(x, shifts=−s): position p of the rolled grid holds p + s
          const y = (wy * wh + iy + g.shift[0]) % g.padHeight;
          const x = (wx * ww + ix + g.shift[1]) % g.padWidth;
          out[k++] = y < g.height && x < g.width ? y * g.width + x : -1;
        }
      }
    }
  }
  return out;
}

/** Python's slice bounds of a[start:end] on an axis of n (−0 is 0). */
function pySlice(start: number, end: number | null, n: number): [number, number] {
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  return [clamp(start), end === null ? n : clamp(end)];
}

/** The additive mask [windows, N, N] of a shifted block (0 or −100), or null when
 *  torchvision adds none (no shift along either axis). */
export function shiftMask(g: WindowGeometry): Float32Array | null {
  const [wh, ww] = g.window;
  const [sh, sw] = g.shift;
  if (sh + sw === 0) return null;
  const label = new Int32Array(g.padHeight * g.padWidth);
  const hSlices: [number, number | null][] = [[0, -wh], [-wh, -sh], [-sh, null]];
  const wSlices: [number, number | null][] = [[0, -ww], [-ww, -sw], [-sw, null]];
  let count = 0;
  for (const h of hSlices) {
    const [y0, y1] = pySlice(h[0], h[1], g.padHeight);
    for (const w of wSlices) {
      const [x0, x1] = pySlice(w[0], w[1], g.padWidth);
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) label[y * g.padWidth + x] = count;
      count++;
    }
  }
  const N = g.tokens;
  const nW = g.windowsY * g.windowsX;
  const mask = new Float32Array(nW * N * N);
  for (let wy = 0; wy < g.windowsY; wy++) {
    for (let wx = 0; wx < g.windowsX; wx++) {
      const w = wy * g.windowsX + wx;
      const at = (i: number) => label[(wy * wh + Math.floor(i / ww)) * g.padWidth + wx * ww + (i % ww)];
      for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) mask[(w * N + i) * N + j] = at(i) !== at(j) ? SWIN_MASK_VALUE : 0;
    }
  }
  return mask;
}

/** define_relative_position_index: for query i and key j of a window, the row of the
 *  bias table [(2wh−1)(2ww−1), heads]. */
export function relativePositionIndex(window: [number, number]): Int32Array {
  const [wh, ww] = window;
  const N = wh * ww;
  const out = new Int32Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      const dy = Math.floor(i / ww) - Math.floor(j / ww) + wh - 1;
      const dx = (i % ww) - (j % ww) + ww - 1;
      out[i * N + j] = dy * (2 * ww - 1) + dx;
    }
  }
  return out;
}

/** PatchMerging (V1): the source grid token of each of the 4C channels' blocks at output
 *  position (i, j), in torchvision's order x0 = (0,0), x1 = (1,0), x2 = (0,1), x3 = (1,1)
 *  (row offset first); −1 where an odd side was padded with zeros. */
export function mergeSource(height: number, width: number, i: number, j: number, part: number): number {
  const y = 2 * i + (part & 1);
  const x = 2 * j + (part >> 1);
  return y < height && x < width ? y * width + x : -1;
}
