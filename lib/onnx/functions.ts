// Inlining of model-local functions (ModelProto.functions). The dynamo exporter of
// PyTorch ≥ 2.x may wrap module boundaries in such functions; the recognizer only looks at
// plain ONNX ops, so every call is replaced by the function body, recursively.

import { SpdfqError } from '../errors';
import { onnx } from './proto';

/** A node after inlining. `attrs` keeps the proto attributes by name. */
export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, onnx.IAttributeProto>;
  /** The chain of function calls this node was inlined from ('' for top-level nodes). */
  inlinedFrom: string;
}

/** Deeper nesting than this is a recursive function (or a corrupt file). */
const MAX_FUNCTION_DEPTH = 32;

function functionKey(domain: string | null | undefined, name: string | null | undefined): string {
  return `${domain ?? ''}::${name ?? ''}`;
}

export function toOnnxNode(n: onnx.INodeProto, inlinedFrom = ''): OnnxNode {
  const attrs = new Map<string, onnx.IAttributeProto>();
  for (const a of n.attribute ?? []) if (a.name) attrs.set(a.name, a);
  return {
    name: n.name ?? '',
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attrs,
    inlinedFrom,
  };
}

/** Top-level nodes with every local function call expanded. Names inside a body are
 *  prefixed with the call's name so two calls of one function never collide. */
export function inlineFunctions(nodes: readonly onnx.INodeProto[], functions: readonly onnx.IFunctionProto[]): OnnxNode[] {
  const table = new Map<string, onnx.IFunctionProto>();
  for (const f of functions) table.set(functionKey(f.domain, f.name), f);
  const out: OnnxNode[] = [];
  let callCounter = 0;

  const expand = (node: OnnxNode, depth: number): void => {
    const fn = table.get(functionKey(node.domain, node.opType));
    if (!fn) {
      out.push(node);
      return;
    }
    if (depth >= MAX_FUNCTION_DEPTH) {
      throw new SpdfqError('E_ONNX', `local function '${fn.domain}.${fn.name}' is nested more than ${MAX_FUNCTION_DEPTH} deep (recursive?) at node '${node.name || node.outputs[0]}'`);
    }
    const call = `${node.name || `${fn.name}_call${callCounter}`}`;
    callCounter++;
    const rename = new Map<string, string>();
    (fn.input ?? []).forEach((formal, i) => rename.set(formal, node.inputs[i] ?? ''));
    (fn.output ?? []).forEach((formal, i) => rename.set(formal, node.outputs[i] ?? ''));
    const mapName = (n: string): string => {
      if (n === '') return '';
      const r = rename.get(n);
      if (r !== undefined) return r;
      const fresh = `${call}/${n}`;
      rename.set(n, fresh);
      return fresh;
    };
    for (const inner of fn.node ?? []) {
      const copy = toOnnxNode(inner, node.inlinedFrom ? `${node.inlinedFrom} > ${call}` : call);
      copy.name = copy.name ? `${call}/${copy.name}` : '';
      copy.inputs = copy.inputs.map(mapName);
      copy.outputs = copy.outputs.map(mapName);
      // Attributes that refer to the caller's attributes (ref_attr_name) take its value;
      // an attribute the caller did not set is dropped so the op's default applies.
      for (const [key, attr] of [...copy.attrs]) {
        if (!attr.refAttrName) continue;
        const given = node.attrs.get(attr.refAttrName);
        if (given) copy.attrs.set(key, { ...given, name: key });
        else copy.attrs.delete(key);
      }
      expand(copy, depth + 1);
    }
  };

  for (const n of nodes) expand(toOnnxNode(n), 0);
  return out;
}
