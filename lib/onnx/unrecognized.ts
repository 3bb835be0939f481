// The one error the recognizer throws when a graph is valid ONNX but not a ViT it knows:
// it names the node where matching stopped, what was expected there, and the families
// that are supported, so a user can tell a missing feature from a broken export.

import { SpdfqError } from '../errors';
import { describeNode, OnnxNode } from './graph';

export const SUPPORTED_FAMILIES =
  'timm ViT/DeiT, HuggingFace ViTForImageClassification, torchvision VisionTransformer, nn.TransformerEncoder ViTs (either layout, post- or pre-norm), vit-pytorch (rearranged patches), CLIP-style towers; ' +
  'MLP activation GELU (erf, tanh), QuickGELU, ReLU or SiLU; Conv or rearrange + Linear patch embedding with optional LayerNorms; fused or separate q/k/v with or without bias; LayerScale; ' +
  'class token, mean or distillation pooling; as exported by torch.onnx (opsets 13-21 tested). Swin V1 graphs (torchvision, timm) are recognized separately (importSwinOnnx; fp32 forward and export only); other windowed or hierarchical models are not supported';

export function unrecognized(stage: string, expected: string, found: OnnxNode | string | null): SpdfqError {
  const at = found === null ? 'the end of the graph' : typeof found === 'string' ? found : describeNode(found);
  return new SpdfqError(
    'E_ONNX',
    `not a supported ViT graph: recognition stopped at ${at} while matching ${stage}: expected ${expected}. Supported: ${SUPPORTED_FAMILIES}.`,
  );
}
