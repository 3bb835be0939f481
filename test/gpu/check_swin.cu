// Swin checks (docs/swin.md): the CUDA Swin forward and backward — core/swin_passes.h on
// the CUDA op table (native/cuda/cuda_swin_ops.h) — against CpuSwin with the scalar
// reference kernels, on random weights, at the shapes of two PyTorch fixtures (shifted
// windows; padding, an odd merge and a stage smaller than its window): every forward
// intermediate, then the input gradient and every weight gradient of a backward from
// random logit gradients with attention-tap gradients injected at every odd block.
#include <cstring>
#include <memory>

#include "check_util.h"
#include "cuda_swin_ops.h"
#include "../../native/cpu/swin_cpu.h"

namespace spdfq::check {

namespace {

SwinConfig swin_config(int image, int embed, std::vector<int> depths, std::vector<int> heads, int wh, int ww,
                       float mlp_ratio, int classes) {
  SwinConfig c;
  c.image_h = c.image_w = image;
  c.patch = 2;
  c.embed_dim = embed;
  c.depths = std::move(depths);
  c.heads = std::move(heads);
  c.window_h = wh;
  c.window_w = ww;
  c.mlp_ratio = mlp_ratio;
  c.num_classes = classes;
  return c;
}

void check_swin_model(Report& r, const SwinConfig& c, int B, GemmMath math) {
  Rng rng(77);
  const int64_t P = swin_param_count(c);
  std::vector<float> params = randn(P, rng, 0.2f);
  std::vector<float> images = randn(int64_t(B) * c.image_len(), rng);

  cpu::CpuSwin cpu_model(c, 1);
  cpu_model.set_reference(true);
  std::memcpy(cpu_model.params(), params.data(), sizeof(float) * size_t(P));
  cpu_model.forward(images.data(), B);

  cuda::SwinDeviceModel m;
  m.c = c;
  m.patch_geom.image_h = c.image_h;
  m.patch_geom.image_w = c.image_w;
  m.patch_geom.channels = c.channels;
  m.patch_geom.patch = c.patch;
  m.batch = B;
  Dev<float> d_params(params), d_images(images);
  Dev<float> d_arena(plan_swin_activations(c, B, nullptr, nullptr));
  d_arena.poison();
  const SwinIndices idx = make_swin_indices(c);
  Dev<int32_t> d_index(idx.data);
  m.w = bind_swin_params(c, d_params.p());
  plan_swin_activations(c, B, d_arena.p(), &m.a);
  m.index = idx.bind(d_index.p());
  cuda::Ctx ctx;
  ctx.math = math;
  cuda::swin_forward(m, d_images.p(), ctx);
  CUDA_CHECK(cudaDeviceSynchronize());

  const double tol = tolerances(math).fwd;
  auto compare = [&](const std::string& name, const float* dev) {
    const cpu::CpuSwin::Tensor t = cpu_model.output(name);
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<float> got(static_cast<size_t>(n));
    CUDA_CHECK(cudaMemcpy(got.data(), dev, sizeof(float) * size_t(n), cudaMemcpyDeviceToHost));
    r.check(std::string("[") + cuda::gemm_math_name(math) + "] swin " + name, rel_error(got.data(), t.data, n), tol);
  };
  compare("patch_embed", m.a.x0);
  for (int s = 0; s < c.stages(); ++s) {
    for (int i = 0; i < c.depths[size_t(s)]; ++i)
      compare("block." + std::to_string(s) + "." + std::to_string(i), m.a.blocks[size_t(swin_block_index(c, s, i))].out);
    if (s + 1 < c.stages()) compare("merge." + std::to_string(s), m.a.merges[size_t(s)].out);
  }
  compare("pooled", m.a.pooled);
  compare("logits", m.a.logits);

  // Backward, with weight gradients and a tap gradient at every odd (shifted) block.
  std::vector<float> dlogits = randn(int64_t(B) * c.num_classes, rng);
  std::vector<std::vector<float>> taps(size_t(c.blocks()));
  std::vector<const float*> tap_host(size_t(c.blocks()), nullptr), tap_dev(size_t(c.blocks()), nullptr);
  std::vector<std::unique_ptr<Dev<float>>> tap_mem;
  for (int s = 0; s < c.stages(); ++s)
    for (int i = 1; i < c.depths[size_t(s)]; i += 2) {
      const size_t l = size_t(swin_block_index(c, s, i));
      const int64_t N = c.window_tokens();
      taps[l] = randn(int64_t(B) * c.windows(s) * c.heads[size_t(s)] * N * N, rng);
      tap_host[l] = taps[l].data();
      tap_mem.push_back(std::make_unique<Dev<float>>(taps[l]));
      tap_dev[l] = tap_mem.back()->p();
    }
  std::vector<float> dimages(size_t(B * c.image_len()));
  TapGrads cpu_taps;
  cpu_taps.attn = tap_host;
  cpu_model.backward(dlogits.data(), cpu_taps, dimages.data(), true);

  const int64_t att_scratch = cuda::swin_att_scratch_floats(c, B);
  Dev<float> d_grads(plan_swin_grads(c, B, att_scratch, nullptr, nullptr));
  d_grads.poison();
  plan_swin_grads(c, B, att_scratch, d_grads.p(), &m.g);
  Dev<float> d_reduce(cuda::swin_reduce_scratch_floats(c)), d_wgrads(P), d_dlogits(dlogits);
  Dev<float> d_dimages(int64_t(B) * c.image_len());
  d_dimages.poison();
  CUDA_CHECK(cudaMemset(d_wgrads.p(), 0, sizeof(float) * size_t(P)));
  SwinParams gp = bind_swin_params(c, d_wgrads.p());
  ctx.scratch = d_reduce.p();
  ctx.scratch_floats = d_reduce.n();
  cuda::swin_backward(m, d_dlogits.p(), d_dimages.p(), &gp, tap_dev, ctx);
  CUDA_CHECK(cudaDeviceSynchronize());

  const double btol = tolerances(math).bwd;
  const std::string tag = std::string("[") + cuda::gemm_math_name(math) + "] swin grad ";
  r.check(tag + "input", rel_error(d_dimages.get(), dimages), btol);
  const std::vector<float> wg = d_wgrads.get();
  for (const ParamInfo& p : plan_swin_params(c))
    r.check(tag + p.name, rel_error(wg.data() + p.offset, cpu_model.weight_grads() + p.offset, p.size), btol);
}

}  // namespace

int run_swin_checks(Report& r) {
  const SwinConfig small = swin_config(32, 32, {2, 2}, {2, 4}, 4, 4, 2.0f, 10);
  const SwinConfig pad = swin_config(20, 8, {2, 2, 2}, {1, 2, 2}, 4, 3, 4.0f, 7);
  for (GemmMath math : {GemmMath::Fp32, GemmMath::Tf32}) {
    r.prefix = "swin_small: ";
    check_swin_model(r, small, 2, math);
    r.prefix = "swin_pad: ";
    check_swin_model(r, pad, 3, math);
  }
  return r.failed;
}

}  // namespace spdfq::check
