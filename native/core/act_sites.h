// The activation quantization sites of a ViT or a Swin (RepQ-ViT's choice, Li et al. ICCV
// 2023): the input of every Linear (qkv, proj, fc1, fc2, head, and a Swin's patch-merging
// reduction), the patch-embedding input, and both operands of both attention matmuls (q, k
// for q·kᵀ; the softmax probabilities and v for P·v).
// The engine reports each site to an observer (calibration) and fake-quantizes it in
// place when a quantizer is set (the probabilities into a copy: softmax's backward needs
// the unquantized values). Backward is straight-through (identity) at every site.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "quantizer.h"

namespace spdfq::quant {

enum class Site : int32_t { PatchIn = 0, QkvIn, Q, K, V, Probs, ProjIn, Fc1In, Fc2In, HeadIn, ReduceIn, Count };

inline const char* site_name(Site s) {
  switch (s) {
    case Site::PatchIn: return "patch_in";
    case Site::QkvIn: return "qkv_in";
    case Site::Q: return "q";
    case Site::K: return "k";
    case Site::V: return "v";
    case Site::Probs: return "probs";
    case Site::ProjIn: return "proj_in";
    case Site::Fc1In: return "fc1_in";
    case Site::Fc2In: return "fc2_in";
    case Site::HeadIn: return "head_in";
    case Site::ReduceIn: return "reduce_in";
    default: return "?";
  }
}

constexpr int kBlockSites = 8;  // QkvIn … Fc2In
inline bool is_block_site(Site s) { return s >= Site::QkvIn && s <= Site::Fc2In; }
// A Swin's patch merging after stage s: its "block" is s.
inline bool is_merge_site(Site s) { return s == Site::ReduceIn; }

// A strided 2-D view of one site's values: rows × cols, row stride ld (q/k/v live inside
// the [tokens, 3D] qkv rows). For Probs: rows = B·H·N, cols = N.
struct SiteView {
  Site site;
  int block;  // −1 for the model-level sites (PatchIn, HeadIn); the merge's stage for ReduceIn
  const float* data;
  int64_t rows, cols, ld;
};

using ActObserver = std::function<void(const SiteView&)>;

// Quantizers for every site; kind None leaves a site in float.
struct ActQuantState {
  TensorQuant patch_in;
  std::vector<TensorQuant> blocks;  // [depth × kBlockSites], index l·kBlockSites + (site − QkvIn)
  TensorQuant head_in;
  std::vector<TensorQuant> merges;  // a Swin's reduction inputs, one per patch merging (empty for a ViT)

  const TensorQuant& at(Site s, int block) const {
    if (s == Site::PatchIn) return patch_in;
    if (s == Site::HeadIn) return head_in;
    if (s == Site::ReduceIn) return merges[size_t(block)];
    return blocks[size_t(block) * kBlockSites + (int(s) - int(Site::QkvIn))];
  }
  TensorQuant& at(Site s, int block) { return const_cast<TensorQuant&>(static_cast<const ActQuantState*>(this)->at(s, block)); }
  bool quantizes_probs() const {
    for (size_t l = 0; l < blocks.size() / kBlockSites; ++l)
      if (at(Site::Probs, int(l)).kind != QuantKind::None) return true;
    return false;
  }
};

}  // namespace spdfq::quant
