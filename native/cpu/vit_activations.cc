#include "vit_activations.h"

#include "ops.h"

namespace spdfq::cpu {

namespace {
// Bump allocator over the arena; every tensor starts on a 64-byte boundary.
struct Bump {
  float* base;
  int64_t used = 0;
  float* take(int64_t n) {
    float* p = base ? base + used : nullptr;
    used += (n + 15) / 16 * 16;
    return p;
  }
};
}  // namespace

int64_t plan_activations(const VitConfig& c, int batch, int threads, bool quant, float* arena, VitActs* a,
                         VitGrads* g) {
  const int64_t B = batch, N = c.tokens(), D = c.dim, H = c.heads, M = c.mlp_dim, P = c.patches();
  const int64_t L = c.patch_len(), K = c.num_classes, R = B * N, hin = head_inputs(c);
  Bump bump{arena};
  VitActs acts;
  acts.patches = bump.take(B * P * L);
  acts.x0 = bump.take(R * D);
  acts.blocks.resize(c.depth);
  for (auto& blk : acts.blocks) {
    blk.ln1 = bump.take(R * D);
    blk.ln1_mean = bump.take(R);
    blk.ln1_rstd = bump.take(R);
    blk.qkv = bump.take(R * 3 * D);
    blk.att = bump.take(B * H * N * N);
    blk.att_q = quant ? bump.take(B * H * N * N) : nullptr;
    const bool post_q = quant && c.norm == NormPlacement::Post;
    blk.qkv_in_q = post_q ? bump.take(R * D) : nullptr;
    blk.fc1_in_q = post_q ? bump.take(R * D) : nullptr;
    blk.av = bump.take(R * D);
    blk.sum1 = bump.take(R * D);
    blk.ln2 = bump.take(R * D);
    blk.ln2_mean = bump.take(R);
    blk.ln2_rstd = bump.take(R);
    blk.fc1 = bump.take(R * M);
    blk.act = bump.take(R * M);
    blk.sum2 = bump.take(R * D);
  }
  const int64_t fn_rows = c.final_norm == FinalNorm::Pooled ? B * hin : R;
  acts.fnorm = c.final_norm == FinalNorm::None ? nullptr : bump.take(fn_rows * D);
  acts.fnorm_mean = c.final_norm == FinalNorm::None ? nullptr : bump.take(fn_rows);
  acts.fnorm_rstd = c.final_norm == FinalNorm::None ? nullptr : bump.take(fn_rows);
  acts.pooled = bump.take(B * hin * D);
  acts.feat = c.final_norm == FinalNorm::Pooled ? acts.fnorm : acts.pooled;
  acts.logits = bump.take(B * K);

  VitGrads grads;
  grads.dres = bump.take(R * D);
  grads.dtmp = bump.take(R * D);
  grads.dtmp2 = bump.take(R * D);
  grads.dqkv = bump.take(R * 3 * D);
  grads.dhid = bump.take(R * M);
  grads.dhid2 = bump.take(R * M);
  grads.dfeat = bump.take(B * hin * D);
  grads.dpool = bump.take(B * hin * D);
  grads.dpatches = bump.take(B * P * L);
  grads.att_scratch = bump.take(attention_scratch_floats(int(N), threads));
  if (a) *a = acts;
  if (g) *g = grads;
  return bump.used;
}

}  // namespace spdfq::cpu
