// Image resampling for real calibration images: separable triangle (bilinear) filter whose
// support widens with the downscale factor (as PIL's BILINEAR resize, which antialiases),
// so a large photo shrunk to 224 or 28 pixels does not alias. Pixels are [h, w, c].

export interface Plane {
  width: number;
  height: number;
  channels: number;
  pixels: Float32Array;
}

function weights(inSize: number, outSize: number, offset: number, span: number): { start: number[]; w: Float32Array[] } {
  // Output pixel o covers input coordinates offset + [o, o+1)·span/outSize.
  const scale = span / outSize;
  const support = Math.max(1, scale);
  const start: number[] = [];
  const w: Float32Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const center = offset + (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(inSize - 1, Math.ceil(center + support));
    const ws = new Float32Array(hi - lo + 1);
    let sum = 0;
    for (let i = lo; i <= hi; i++) {
      const v = Math.max(0, 1 - Math.abs((i + 0.5 - center) / support));
      ws[i - lo] = v;
      sum += v;
    }
    if (sum === 0) {
      ws.fill(0);
      ws[Math.min(ws.length - 1, Math.max(0, Math.round(center - 0.5) - lo))] = 1;
      sum = 1;
    }
    for (let i = 0; i < ws.length; i++) ws[i] /= sum;
    start.push(lo);
    w.push(ws);
  }
  return { start, w };
}

/** Resamples the window [y0, y0+h) × [x0, x0+w) (fractional) of `img` to outH × outW. */
export function resample(img: Plane, outH: number, outW: number, win = { y0: 0, x0: 0, h: img.height, w: img.width }): Plane {
  const C = img.channels;
  const wx = weights(img.width, outW, win.x0, win.w);
  const wy = weights(img.height, outH, win.y0, win.h);
  const tmp = new Float32Array(img.height * outW * C);
  for (let y = 0; y < img.height; y++)
    for (let o = 0; o < outW; o++) {
      const ws = wx.w[o], s = wx.start[o];
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let k = 0; k < ws.length; k++) acc += ws[k] * img.pixels[(y * img.width + s + k) * C + c];
        tmp[(y * outW + o) * C + c] = acc;
      }
    }
  const out = new Float32Array(outH * outW * C);
  for (let o = 0; o < outH; o++) {
    const ws = wy.w[o], s = wy.start[o];
    for (let x = 0; x < outW; x++)
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let k = 0; k < ws.length; k++) acc += ws[k] * tmp[((s + k) * outW + x) * C + c];
        out[(o * outW + x) * C + c] = acc;
      }
  }
  return { width: outW, height: outH, channels: C, pixels: out };
}

/** Resizes so the image covers (H/cropPct) × (W/cropPct) keeping its aspect, then takes the
 *  centre H × W (timm's eval transform: Resize(size/crop_pct) + CenterCrop(size)). */
export function resizeCenterCrop(img: Plane, H: number, W: number, cropPct: number): Plane {
  const s = Math.max(H / cropPct / img.height, W / cropPct / img.width);
  // The centre window of the source that maps onto the H × W crop.
  const h = H / s, w = W / s;
  return resample(img, H, W, { y0: (img.height - h) / 2, x0: (img.width - w) / 2, h, w });
}
