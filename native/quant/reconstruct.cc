// Block reconstruction of a ViT: its stages (reconstruct_stage.h does the training) — the
// patch embedding when asked, every transformer block, the head when asked.
#include "reconstruct.h"

#include <memory>
#include <string>

#include "reconstruct_stage.h"

namespace spdfq::quant {

namespace {

using cpu::CpuVit;
using recon::Stage;
using recon::select_tensors;

Stage block_stage(CpuVit& m, int l, const std::vector<ParamInfo>& infos, const WeightQuantTable& wq, bool weights) {
  const VitConfig& c = m.config();
  Stage st;
  st.name = "blocks." + std::to_string(l);
  const std::string prefix = st.name + ".";
  select_tensors(st, infos, wq, weights, [&](const std::string& n) {
    return n.rfind(prefix, 0) == 0 && (n.find(".attn.") != std::string::npos || n.find(".mlp.") != std::string::npos);
  });
  st.block = l;
  st.in_len = st.out_len = int64_t(c.tokens()) * c.dim;
  st.forward = [&m, l](const float* in) {
    m.forward_block(l, in);
    return m.block_output(l);
  };
  st.backward = [&m, l](const float* in, const float* dout) { m.backward_block(l, in, dout, nullptr, true); };
  return st;
}

Stage embed_stage(CpuVit& m, const std::vector<ParamInfo>& infos, const WeightQuantTable& wq, bool weights) {
  const VitConfig& c = m.config();
  Stage st;
  st.name = "patch_embed";
  select_tensors(st, infos, wq, weights, [](const std::string& n) { return n.rfind("patch_embed.proj.", 0) == 0; });
  st.in_len = c.image_len();
  st.out_len = int64_t(c.tokens()) * c.dim;
  st.forward = [&m](const float* in) {
    m.forward_embed(in);
    return m.embeddings();
  };
  auto dimages = std::make_shared<std::vector<float>>();
  st.backward = [&m, dimages, &c](const float*, const float* dout) {
    dimages->resize(size_t(m.batch()) * size_t(c.image_len()));
    m.backward_embed(dout, dimages->data());
  };
  return st;
}

Stage head_stage(CpuVit& m, const std::vector<ParamInfo>& infos, const WeightQuantTable& wq, bool weights) {
  const VitConfig& c = m.config();
  Stage st;
  st.name = "head";
  select_tensors(st, infos, wq, weights,
                 [](const std::string& n) { return n.rfind("head.", 0) == 0 || n.rfind("head_dist.", 0) == 0; });
  st.in_len = int64_t(c.tokens()) * c.dim;
  st.out_len = c.num_classes;
  st.forward = [&m](const float* in) {
    m.forward_head(in);
    return m.logits();
  };
  st.backward = [&m](const float*, const float* dout) { m.backward_head(dout); };
  return st;
}

}  // namespace

std::vector<BlockReport> reconstruct_blocks(CpuVit& m, ActQuantState* aq, const WeightQuantTable& wq,
                                            const float* images, int n, const ReconstructConfig& cfg,
                                            const std::function<void(const ReconstructProgress&)>& progress,
                                            const std::atomic<bool>* cancel) {
  const VitConfig& c = m.config();
  const auto infos = plan_params(c);
  const bool weights = cfg.rounding != Rounding::AdaRound;
  recon::StagePlan plan;
  plan.first_takes_images = cfg.embed;
  if (cfg.embed) plan.stages.push_back(embed_stage(m, infos, wq, weights));
  for (int l = 0; l < c.depth; ++l) plan.stages.push_back(block_stage(m, l, infos, wq, weights));
  if (cfg.head) plan.stages.push_back(head_stage(m, infos, wq, weights));
  const int first_block = int(cfg.embed);
  plan.output = [&](int k) -> const float* {
    if (cfg.embed && k == 0) return m.embeddings();
    if (k - first_block < c.depth) return m.block_output(k - first_block);
    return m.logits();
  };
  plan.first_input = [&] { return m.embeddings(); };
  return recon::reconstruct_stages(m, aq, plan, images, n, cfg, progress, cancel);
}

}  // namespace spdfq::quant
