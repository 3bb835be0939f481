#include "cuda_activations.h"

#include "device.h"
#include "fast_math_cuda.h"  // first: see there
#include "ops.h"

namespace spdfq::cuda {

int64_t plan_device_activations(const VitConfig& c, int batch, bool quant, char* base, DeviceActs* out_acts,
                                DeviceGrads* out_grads, DeviceIo* out_io) {
  const int64_t B = batch, N = c.tokens(), D = c.dim, H = c.heads, M = c.mlp_dim, P = c.patches();
  const int64_t L = c.patch_len(), K = c.num_classes, R = B * N, hin = head_inputs(c);
  DeviceBump bump{base};
  DeviceActs a;
  a.patches = bump.floats(B * P * L);
  a.x0 = bump.floats(R * D);
  a.blocks.resize(size_t(c.depth));
  const bool post_q = quant && c.norm == NormPlacement::Post;
  for (auto& blk : a.blocks) {
    blk.ln1 = bump.floats(R * D);
    blk.ln1_mean = bump.floats(R);
    blk.ln1_rstd = bump.floats(R);
    blk.qkv = bump.floats(R * 3 * D);
    blk.att = bump.floats(B * H * N * N);
    blk.att_q = quant ? bump.floats(B * H * N * N) : nullptr;
    blk.qkv_in_q = post_q ? bump.floats(R * D) : nullptr;
    blk.fc1_in_q = post_q ? bump.floats(R * D) : nullptr;
    blk.av = bump.floats(R * D);
    blk.sum1 = bump.floats(R * D);
    blk.ln2 = bump.floats(R * D);
    blk.ln2_mean = bump.floats(R);
    blk.ln2_rstd = bump.floats(R);
    blk.fc1 = bump.floats(R * M);
    blk.act = bump.floats(R * M);
    blk.sum2 = bump.floats(R * D);
  }
  const bool none = c.final_norm == FinalNorm::None;
  const int64_t fn_rows = c.final_norm == FinalNorm::Pooled ? B * hin : R;
  a.fnorm = none ? nullptr : bump.floats(fn_rows * D);
  a.fnorm_mean = none ? nullptr : bump.floats(fn_rows);
  a.fnorm_rstd = none ? nullptr : bump.floats(fn_rows);
  a.pooled = bump.floats(B * hin * D);
  a.feat = c.final_norm == FinalNorm::Pooled ? a.fnorm : a.pooled;
  a.logits = bump.floats(B * K);

  DeviceGrads g;
  g.dres = bump.floats(R * D);
  g.dtmp = bump.floats(R * D);
  g.dtmp2 = bump.floats(R * D);
  g.dqkv = bump.floats(R * 3 * D);
  g.dhid = bump.floats(R * M);
  g.dhid2 = bump.floats(R * M);
  g.dfeat = bump.floats(B * hin * D);
  g.dpool = bump.floats(B * hin * D);
  g.dpatches = bump.floats(B * P * L);
  g.datt = bump.floats(B * H * N * N);
  int64_t widest = 3 * D;  // column reductions: qkv bias (3D), LayerNorm (2 × D), fc1 (M), head (K), patch (D)
  if (M > widest) widest = M;
  if (K > widest) widest = K;
  g.reduce_floats = reduce_scratch_floats(widest);
  g.reduce = bump.floats(g.reduce_floats);

  DeviceIo io;
  io.images = bump.floats(B * c.image_len());
  io.dimages = bump.floats(B * c.image_len());
  io.dlogits = bump.floats(B * K);
  io.tap_attn = bump.floats(B * H * N * N);
  io.tap_av = bump.floats(R * D);
  io.x_in = bump.floats(R * D);

  if (out_acts) *out_acts = a;
  if (out_grads) *out_grads = g;
  if (out_io) *out_io = io;
  return bump.used;
}

}  // namespace spdfq::cuda
