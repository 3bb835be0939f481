// Block reconstruction of a Swin (docs/swin.md, "Stage: quantization"): its stages in
// data-flow order — the patch embedding when asked, each block, each patch merging after
// its stage's blocks, the head when asked — trained by reconstruct_stage.h as the ViT's.
// Trained tensors: a block's qkv, proj, fc1 and fc2 weights and biases (not its LayerNorms
// nor its relative-position bias table), a merge's reduction weight and bias (when
// reparameterization gave it one; not its LayerNorm), the patch conv's weight and bias,
// the head's weight and bias (not the final LayerNorm).
#include <memory>
#include <string>

#include "../cpu/swin_cpu.h"
#include "reconstruct.h"
#include "reconstruct_stage.h"

namespace spdfq::quant {

namespace {

using cpu::CpuSwin;
using recon::Stage;
using recon::select_tensors;

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

Stage swin_block_stage(CpuSwin& m, int s, int i, const std::vector<ParamInfo>& infos, const WeightQuantTable& wq,
                       bool weights) {
  const SwinConfig& c = m.config();
  const int l = swin_block_index(c, s, i);
  Stage st;
  st.name = "features." + std::to_string(2 * s + 1) + "." + std::to_string(i);
  const std::string prefix = st.name + ".";
  select_tensors(st, infos, wq, weights, [&](const std::string& n) {
    return starts_with(n, prefix) && (contains(n, ".attn.") || contains(n, ".mlp."));
  });
  st.block = l;
  st.in_len = st.out_len = int64_t(c.tokens(s)) * c.dim(s);
  st.forward = [&m, l](const float* in) {
    m.forward_block(l, in);
    return m.block_output(l);
  };
  st.backward = [&m, l](const float* in, const float* dout) { m.backward_block(l, in, dout, nullptr); };
  return st;
}

Stage swin_merge_stage(CpuSwin& m, int s, const std::vector<ParamInfo>& infos, const WeightQuantTable& wq,
                       bool weights) {
  const SwinConfig& c = m.config();
  Stage st;
  st.name = "features." + std::to_string(2 * s + 2);
  const std::string prefix = st.name + ".reduction.";
  select_tensors(st, infos, wq, weights, [&](const std::string& n) { return starts_with(n, prefix); });
  st.in_len = int64_t(c.tokens(s)) * c.dim(s);
  st.out_len = int64_t(c.tokens(s + 1)) * c.dim(s + 1);
  st.forward = [&m, s](const float* in) {
    m.forward_merge(s, in);
    return m.merge_output(s);
  };
  st.backward = [&m, s](const float*, const float* dout) { m.backward_merge(s, dout, nullptr); };
  return st;
}

Stage swin_embed_stage(CpuSwin& m, const std::vector<ParamInfo>& infos, const WeightQuantTable& wq, bool weights) {
  const SwinConfig& c = m.config();
  Stage st;
  st.name = "features.0";
  select_tensors(st, infos, wq, weights, [](const std::string& n) { return starts_with(n, "features.0.0."); });
  st.in_len = c.image_len();
  st.out_len = int64_t(c.tokens(0)) * c.dim(0);
  st.forward = [&m](const float* in) {
    m.forward_embed(in);
    return m.embeddings();
  };
  st.backward = [&m](const float*, const float* dout) { m.backward_embed(dout, nullptr); };
  return st;
}

Stage swin_head_stage(CpuSwin& m, const std::vector<ParamInfo>& infos, const WeightQuantTable& wq, bool weights) {
  const SwinConfig& c = m.config();
  Stage st;
  st.name = "head";
  select_tensors(st, infos, wq, weights, [](const std::string& n) { return starts_with(n, "head."); });
  st.in_len = int64_t(c.tokens(c.stages() - 1)) * c.features();
  st.out_len = c.num_classes;
  st.forward = [&m](const float* in) {
    m.forward_head(in);
    return m.logits();
  };
  st.backward = [&m](const float* in, const float* dout) { m.backward_head(in, dout); };
  return st;
}

// The Swin's stages in data-flow order (the patch embedding and the head when asked), and
// where a whole-model forward leaves each one's output.
recon::StagePlan swin_plan(CpuSwin& m, const WeightQuantTable& wq, bool weights, bool embed, bool head) {
  const SwinConfig& c = m.config();
  const auto infos = std::make_shared<const std::vector<ParamInfo>>(plan_swin_params(c));
  auto outputs = std::make_shared<std::vector<std::function<const float*()>>>();
  recon::StagePlan plan;
  plan.first_takes_images = embed;
  if (embed) {
    plan.stages.push_back(swin_embed_stage(m, *infos, wq, weights));
    outputs->emplace_back([&m] { return m.embeddings(); });
  }
  for (int s = 0; s < c.stages(); ++s) {
    for (int i = 0; i < c.depths[size_t(s)]; ++i) {
      plan.stages.push_back(swin_block_stage(m, s, i, *infos, wq, weights));
      const int l = swin_block_index(c, s, i);
      outputs->emplace_back([&m, l] { return m.block_output(l); });
    }
    if (s + 1 < c.stages()) {
      plan.stages.push_back(swin_merge_stage(m, s, *infos, wq, weights));
      outputs->emplace_back([&m, s] { return m.merge_output(s); });
    }
  }
  if (head) {
    plan.stages.push_back(swin_head_stage(m, *infos, wq, weights));
    outputs->emplace_back([&m] { return m.logits(); });
  }
  // The stages point into `infos`: the plan keeps it alive.
  plan.output = [outputs, infos](int k) { return (*outputs)[size_t(k)](); };
  plan.first_input = [&m] { return m.embeddings(); };
  return plan;
}

}  // namespace

std::vector<BlockReport> reconstruct_swin(CpuSwin& m, ActQuantState* aq, const WeightQuantTable& wq,
                                          const float* images, int n, const ReconstructConfig& cfg,
                                          const std::function<void(const ReconstructProgress&)>& progress,
                                          const std::atomic<bool>* cancel) {
  const recon::StagePlan plan = swin_plan(m, wq, cfg.rounding != Rounding::AdaRound, cfg.embed, cfg.head);
  return recon::reconstruct_stages(m, aq, plan, images, n, cfg, progress, cancel);
}

double swin_stage_gradient(CpuSwin& m, const WeightQuantTable& wq, const std::string& stage, const float* in,
                           int64_t in_count, const float* target, int64_t target_count, int batch, float* grads) {
  const recon::StagePlan plan = swin_plan(m, wq, true, true, true);
  std::string names;
  for (const Stage& st : plan.stages) {
    if (st.name != stage) {
      names += (names.empty() ? "" : ", ") + st.name;
      continue;
    }
    if (batch < 1 || in_count != batch * st.in_len || target_count != batch * st.out_len)
      fail("E_TENSOR", "stage " + stage + ": expected " + std::to_string(st.in_len) + " input and " +
                           std::to_string(st.out_len) + " target floats per image for a batch of " +
                           std::to_string(batch) + ", received " + std::to_string(in_count) + " and " +
                           std::to_string(target_count));
    return recon::stage_gradient(m, st, in, target, batch, grads);
  }
  fail("E_CONFIG", "unknown Swin reconstruction stage '" + stage + "': expected one of " + names);
}

}  // namespace spdfq::quant
