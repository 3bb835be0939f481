#include "cuda_activations.h"

#include "device.h"
#include "fast_math_cuda.h"  // first: see there
#include "ops.h"

namespace spdfq::cuda {

int64_t plan_device_activations(const VitConfig& c, int batch, bool quant, char* base, VitActs* out_acts,
                                VitGrads* out_grads, DeviceScratch* out_scratch, DeviceIo* out_io) {
  const int64_t B = batch, N = c.tokens(), D = c.dim, H = c.heads, M = c.mlp_dim;
  const int64_t K = c.num_classes, R = B * N;
  DeviceBump bump{base};
  plan_model_activations(c, batch, quant, B * H * N * N, [&](int64_t n) { return bump.floats(n); }, out_acts,
                         out_grads);

  DeviceScratch s;
  // Column reductions: qkv bias (3D), LayerNorm (2 × D), fc1 (M), head (K), patch (D), and the LayerNorm over
  // the raw patch vector (patch_len) of a model with patch_input_norm (vit-pytorch), the widest when D is small.
  int64_t widest = 3 * D;
  if (M > widest) widest = M;
  if (K > widest) widest = K;
  if (c.patch_input_norm && c.patch_len() > widest) widest = c.patch_len();
  s.reduce_floats = reduce_scratch_floats(widest);
  s.reduce = bump.floats(s.reduce_floats);

  DeviceIo io;
  io.images = bump.floats(B * c.image_len());
  io.dimages = bump.floats(B * c.image_len());
  io.dlogits = bump.floats(B * K);
  io.tap_attn = bump.floats(B * H * N * N);
  io.tap_av = bump.floats(R * D);
  io.x_in = bump.floats(R * D);

  if (out_scratch) *out_scratch = s;
  if (out_io) *out_io = io;
  return bump.used;
}

}  // namespace spdfq::cuda
