// Layout algebra: what each axis of an activation tensor means, tracked through Reshape,
// Transpose, Split/Slice/Gather and Squeeze. This is how the recognizer proves that, for
// example, `qkv.reshape(B, N, 3, H, d).permute(2, 0, 3, 1, 4)[1]` is "the keys, head-major"
// no matter which of the exporters' many op sequences produced it (timm's Split, Gather or
// Slice; torchvision's in_proj Slice + view(N, B·H, d); HuggingFace's view + permute).
//
// A tensor's memory is described as a list of axes; each axis is a row-major product of
// factors. A factor is a digit of a named logical index: index(name) = offset(name) +
// Σ digit · stride over that name's factors. Names: 'b' (batch), 'n' (token), 'p' (patch
// grid), and one name per Linear/Conv output channel. Size-1 factors carry no information
// and are dropped.

export interface Factor {
  name: string;
  size: number;
  stride: number;
}

export interface Layout {
  axes: Factor[][];
  /** Start of each named index (after Slice / Gather picked a sub-range). */
  offsets: Record<string, number>;
  /** The token range a ReduceMean averaged over (mean pooling), if any. */
  meanOver?: { name: string; start: number; size: number };
}

export class LayoutError extends Error {}

export function axisSize(axis: readonly Factor[]): number {
  return axis.reduce((s, f) => s * f.size, 1);
}

/** Drop size-1 factors and merge neighbours that are consecutive digits of one index. */
function canonicalAxis(axis: readonly Factor[]): Factor[] {
  const out: Factor[] = [];
  for (const f of axis) {
    if (f.size === 1) continue;
    const last = out[out.length - 1];
    if (last && last.name === f.name && last.stride === f.size * f.stride) {
      out[out.length - 1] = { name: f.name, size: last.size * f.size, stride: f.stride };
    } else out.push({ ...f });
  }
  return out;
}

export function makeLayout(axes: Factor[][], offsets: Record<string, number> = {}, meanOver?: Layout['meanOver']): Layout {
  return { axes: axes.map(canonicalAxis), offsets: { ...offsets }, meanOver };
}

/** A full logical index as a single factor. */
export function full(name: string, size: number): Factor[] {
  return size === 1 ? [] : [{ name, size, stride: 1 }];
}

export function transposeLayout(l: Layout, perm: readonly number[]): Layout {
  if (perm.length !== l.axes.length) throw new LayoutError(`perm of ${perm.length} axes on a rank-${l.axes.length} tensor`);
  return makeLayout(perm.map((p) => l.axes[p]), l.offsets, l.meanOver);
}

/** Regroup the row-major factor sequence into the new sizes, splitting a factor where a
 *  new axis boundary falls inside it (e.g. the 3D qkv channel into 3 × H × d). */
export function reshapeLayout(l: Layout, shape: readonly number[]): Layout {
  const queue: Factor[] = l.axes.flat().map((f) => ({ ...f }));
  const axes: Factor[][] = [];
  for (const size of shape) {
    let need = size;
    const axis: Factor[] = [];
    while (need > 1) {
      const f = queue[0];
      if (!f) throw new LayoutError(`reshape to [${shape.join(', ')}] needs more elements than the tensor has`);
      if (need % f.size === 0) {
        axis.push(queue.shift() as Factor);
        need /= f.size;
      } else if (f.size % need === 0) {
        const rest = f.size / need;
        axis.push({ name: f.name, size: need, stride: f.stride * rest });
        queue[0] = { name: f.name, size: rest, stride: f.stride };
        need = 1;
      } else {
        throw new LayoutError(`reshape to [${shape.join(', ')}] cuts across the '${f.name}' index (size ${f.size}) at a non-divisor`);
      }
    }
    axes.push(axis);
  }
  if (queue.some((f) => f.size !== 1)) throw new LayoutError(`reshape to [${shape.join(', ')}] leaves elements over`);
  return makeLayout(axes, l.offsets, l.meanOver);
}

/** Keep indices [start, start + size) of one axis. Only a slice along the axis' leading
 *  factor can be described (the only kind exporters emit). */
export function sliceLayout(l: Layout, axisIndex: number, start: number, size: number): Layout {
  const axis = l.axes[axisIndex];
  const total = axisSize(axis);
  if (start === 0 && size === total) return l;
  const lead = axis[0];
  const inner = total / lead.size;
  if (start % inner !== 0 || size % inner !== 0) {
    throw new LayoutError(`a slice [${start}, ${start + size}) of an axis made of ${describeAxis(axis)} does not follow its leading index`);
  }
  const offsets = { ...l.offsets };
  offsets[lead.name] = (offsets[lead.name] ?? 0) + (start / inner) * lead.stride;
  const axes = l.axes.map((a, i) => (i === axisIndex ? [{ ...lead, size: size / inner }, ...a.slice(1)] : a));
  return makeLayout(axes, offsets, l.meanOver);
}

/** Gather of one index: the axis disappears (keepAxis: it stays with size 1). */
export function selectLayout(l: Layout, axisIndex: number, index: number, keepAxis: boolean): Layout {
  const sliced = sliceLayout(l, axisIndex, index, 1);
  const axes = sliced.axes.filter((_, i) => keepAxis || i !== axisIndex).map((a, i) => (keepAxis && i === axisIndex ? [] : a));
  return makeLayout(axes, sliced.offsets, l.meanOver);
}

/** A Linear (or Conv 1×1-like map) on the last axis: that axis becomes a new channel. */
export function linearLayout(l: Layout, channel: string, outSize: number): Layout {
  const axes = l.axes.slice(0, -1).concat([full(channel, outSize)]);
  return makeLayout(axes, l.offsets, l.meanOver);
}

export function describeAxis(axis: readonly Factor[]): string {
  if (axis.length === 0) return '1';
  return axis.map((f) => `${f.name}${f.stride === 1 ? '' : `/${f.stride}`}:${f.size}`).join('·');
}

export function describeLayout(l: Layout): string {
  return `[${l.axes.map(describeAxis).join(', ')}]`;
}

export function sameFactors(a: readonly Factor[], b: readonly Factor[]): boolean {
  return a.length === b.length && a.every((f, i) => f.name === b[i].name && f.size === b[i].size && f.stride === b[i].stride);
}
