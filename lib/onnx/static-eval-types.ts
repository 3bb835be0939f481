// What static evaluation knows about a tensor: its shape, type, constant value, and for
// constant float tensors, the initializer or Constant node behind them.

import { TensorValue } from './tensor-data';

/** Where a constant float tensor came from, so export can write new values back:
 *  value = reshape(transpose(source data of srcDims, perm), value dims). */
export interface WeightSource {
  kind: 'initializer' | 'constant';
  /** Initializer name, or the output name of the Constant node. */
  name: string;
  srcDims: number[];
  perm: number[] | null;
  /** The Constant node sits inside an inlined local function (cannot be rewritten). */
  inFunction: boolean;
}

export interface Known {
  /** null when the shape depends on something we cannot evaluate. */
  shape: number[] | null;
  dataType: number;
  value?: TensorValue;
  source?: WeightSource;
}
