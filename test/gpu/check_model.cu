// Model-level checks: CudaVit against CpuVit on the same random weights and inputs —
// forward (logits, both taps, features), backward (input gradient with injected tap
// gradients, every weight gradient; and the synthesis path without either), activation
// and weight fake-quantization, the observer, block-level passes — in FP32 and TF32.
// Then the error paths: every failure must be a spdfq::Error with the right code.
#include <algorithm>
#include <map>
#include <thread>

#include "check_util.h"
#include "cuda_vit.h"
#include "device.h"
#include "gemm.h"
#include "../../native/core/vit_params.h"
#include "../../native/cpu/vit_cpu.h"

namespace spdfq::check {

namespace {

// Weights with O(1) activations (Kaiming-like linear weights, LayerNorm near identity),
// so attention is far from uniform and every path carries signal.
std::vector<float> random_params(const VitConfig& c, Rng& rng) {
  std::vector<float> p(size_t(param_count(c)));
  for (const ParamInfo& info : plan_params(c)) {
    float* dst = p.data() + info.offset;
    const bool norm_w = info.name.find("norm") != std::string::npos && info.name.find(".weight") != std::string::npos;
    const bool bias = info.name.size() >= 5 && info.name.compare(info.name.size() - 5, 5, ".bias") == 0;
    const float fan_in = info.shape.size() >= 2 ? float(info.size / info.shape[0]) : 1.0f;
    for (int64_t i = 0; i < info.size; ++i) {
      if (norm_w)
        dst[i] = 1.0f + 0.1f * rng.normal();
      else if (bias)
        dst[i] = 0.05f * rng.normal();
      else if (info.shape.size() >= 2 && info.name.find("weight") != std::string::npos)
        dst[i] = rng.normal() / std::sqrt(fan_in);
      else
        dst[i] = 0.2f * rng.normal();  // tokens, position embedding
    }
  }
  return p;
}

int cpu_threads() { return int(std::max(1u, std::min(8u, std::thread::hardware_concurrency()))); }

struct Pair {
  cpu::CpuVit cpu;
  cuda::CudaVit gpu;
  Pair(const VitConfig& c, const std::vector<float>& params, GemmMath math) : cpu(c, cpu_threads()), gpu(c, 0) {
    gpu.set_gemm_math(math);
    std::copy(params.begin(), params.end(), cpu.params());
    std::copy(params.begin(), params.end(), gpu.params());
  }
};

std::vector<float> copy_of(const float* p, int64_t n) { return std::vector<float>(p, p + n); }

void compare_forward(const Spec& s, Pair& m, Report& r, const std::string& tag, double tol) {
  const VitConfig& c = s.c;
  const int64_t B = s.batch, N = c.tokens();
  r.check(tag + "logits", rel_error(m.gpu.logits(), m.cpu.logits(), B * c.num_classes), tol);
  double att = 0.0, av = 0.0;
  for (int l = 0; l < c.depth; ++l) {
    att = std::max(att, rel_error(m.gpu.attention(l), m.cpu.attention(l), B * c.heads * N * N));
    av = std::max(av, rel_error(m.gpu.attention_values(l), m.cpu.attention_values(l), B * N * c.dim));
  }
  r.check(tag + "attention probabilities (worst block)", att, tol);
  r.check(tag + "A·V (worst block)", av, tol);
  r.check(tag + "features", rel_error(m.gpu.features(), m.cpu.features(), B * (c.dist_token ? 2 : 1) * c.dim), tol);
}

void check_model_math(const Spec& s, Report& r, GemmMath math) {
  const VitConfig& c = s.c;
  const Tol tol = tolerances(math);
  const std::string tag = std::string("[") + cuda::gemm_math_name(math) + "] model ";
  Rng rng(777);
  const std::vector<float> params = random_params(c, rng);
  const int64_t B = s.batch, N = c.tokens(), K = c.num_classes;
  const std::vector<float> images = randn(B * c.image_len(), rng);
  Pair m(c, params, math);
  m.cpu.forward(images.data(), s.batch);
  m.gpu.forward(images.data(), s.batch);
  compare_forward(s, m, r, tag + "forward: ", tol.fwd);

  // Backward with tap gradients and weight gradients.
  const std::vector<float> dlogits = randn(B * K, rng, 1.0f / float(B));
  std::vector<std::vector<float>> ta, tv;
  cpu::TapGrads ct;
  cuda::TapGrads gt;
  for (int l = 0; l < c.depth; ++l) {
    ta.push_back(randn(B * c.heads * N * N, rng, 0.05f));
    tv.push_back(randn(B * N * c.dim, rng, 0.05f));
  }
  for (int l = 0; l < c.depth; ++l) {
    // Leave block 0's attention tap out: "none" must work per block.
    ct.attn.push_back(l == 0 ? nullptr : ta[size_t(l)].data());
    ct.av.push_back(tv[size_t(l)].data());
  }
  gt.attn = ct.attn;
  gt.av = ct.av;
  std::vector<float> dimg_cpu(size_t(B * c.image_len())), dimg_gpu(dimg_cpu.size(), NAN);
  m.cpu.backward(dlogits.data(), ct, dimg_cpu.data(), true);
  m.gpu.backward(dlogits.data(), gt, dimg_gpu.data(), true);
  r.check(tag + "backward with taps: input gradient", rel_error(dimg_gpu, dimg_cpu), tol.bwd);
  const float* gc = m.cpu.grads();
  const float* gg = m.gpu.grads();
  double worst = 0.0;
  std::string worst_name;
  for (const ParamInfo& info : plan_params(c)) {
    const double e = rel_error(gg + info.offset, gc + info.offset, info.size);
    if (!(e <= worst)) {
      worst = std::isnan(e) ? INFINITY : e;
      worst_name = info.name;
    }
  }
  r.check(tag + "backward with taps: weight gradients (worst: " + worst_name + ")", worst, tol.bwd);

  // The synthesis path: no taps, no weight gradients.
  std::fill(dimg_gpu.begin(), dimg_gpu.end(), NAN);
  m.cpu.backward(dlogits.data(), cpu::TapGrads{}, dimg_cpu.data(), false);
  m.gpu.backward(dlogits.data(), cuda::TapGrads{}, dimg_gpu.data(), false);
  r.check(tag + "backward, logits only: input gradient", rel_error(dimg_gpu, dimg_cpu), tol.bwd);

  // Device-pointer API: same pass through device buffers.
  {
    Dev<float> dimgs(images), ddl(dlogits), ddimg(B * c.image_len());
    m.gpu.forward_device(dimgs.p(), s.batch);
    Dev<float> logits_copy(B * K);
    CUDA_CHECK(cudaMemcpy(logits_copy.p(), m.gpu.device_logits(), size_t(B * K) * sizeof(float),
                          cudaMemcpyDeviceToDevice));
    r.check(tag + "device API forward: logits", rel_error(logits_copy.get(), copy_of(m.cpu.logits(), B * K)),
            tol.fwd);
    ddimg.poison();
    m.gpu.backward_device(ddl.p(), cuda::TapGrads{}, ddimg.p(), false);
    r.check(tag + "device API backward: input gradient", rel_error(ddimg.get(), dimg_cpu), tol.bwd);
  }

  // Block-level passes (block reconstruction's interface) on block depth−1.
  {
    const int l = c.depth - 1;
    const std::vector<float> x = randn(B * N * c.dim, rng), dout = randn(B * N * c.dim, rng);
    std::vector<float> dx_cpu(x.size()), dx_gpu(x.size(), NAN);
    m.cpu.prepare(s.batch);
    m.gpu.prepare(s.batch);
    m.cpu.forward_block(l, x.data());
    m.gpu.forward_block(l, x.data());
    r.check(tag + "forward_block output", rel_error(m.gpu.block_output(l), m.cpu.block_output(l), B * N * c.dim),
            tol.fwd);
    m.cpu.backward_block(l, x.data(), dout.data(), dx_cpu.data(), true);
    m.gpu.backward_block(l, x.data(), dout.data(), dx_gpu.data(), true);
    r.check(tag + "backward_block dx", rel_error(dx_gpu, dx_cpu), tol.bwd);
    const std::string pre = "blocks." + std::to_string(l) + ".";
    double we = 0.0;
    gc = m.cpu.grads();
    gg = m.gpu.grads();
    for (const ParamInfo& info : plan_params(c))
      if (info.name.compare(0, pre.size(), pre) == 0)
        we = std::max(we, rel_error(gg + info.offset, gc + info.offset, info.size));
    r.check(tag + "backward_block weight gradients", we, tol.bwd);
  }
}

// Activation quantizers from the CPU model's observed ranges (8-bit uniform everywhere,
// 4-bit log2 for the probabilities), then both models quantized; weights fake-quantized
// on a coarse grid. Fake quantization turns 1-ulp differences at rounding boundaries into
// one-level steps, hence the looser tolerance on what passes through quantized sites.
void check_quantized(const Spec& s, Report& r) {
  const VitConfig& c = s.c;
  const std::string tag = "[fp32] quantized model ";
  Rng rng(4242);
  const std::vector<float> params = random_params(c, rng);
  const int64_t B = s.batch, K = c.num_classes;
  const std::vector<float> images = randn(B * c.image_len(), rng);
  Pair m(c, params, GemmMath::Fp32);

  // Observer on both: per-site (min, max) must agree.
  std::map<std::pair<int, int>, std::pair<float, float>> seen_cpu, seen_gpu;
  auto observer = [](std::map<std::pair<int, int>, std::pair<float, float>>* seen) {
    return [seen](const quant::SiteView& v) {
      auto& mm = (*seen)[{int(v.site), v.block}];
      if (mm.first == 0.0f && mm.second == 0.0f) mm = {INFINITY, -INFINITY};
      for (int64_t i = 0; i < v.rows; ++i)
        for (int64_t j = 0; j < v.cols; ++j) {
          const float x = v.data[i * v.ld + j];
          mm.first = std::min(mm.first, x);
          mm.second = std::max(mm.second, x);
        }
    };
  };
  m.cpu.set_observer(observer(&seen_cpu));
  m.gpu.set_observer(observer(&seen_gpu));
  m.cpu.forward(images.data(), s.batch);
  m.gpu.forward(images.data(), s.batch);
  m.cpu.set_observer(nullptr);
  m.gpu.set_observer(nullptr);
  double obs = seen_cpu.size() == seen_gpu.size() ? 0.0 : INFINITY;
  for (const auto& [key, mm] : seen_cpu) {
    auto it = seen_gpu.find(key);
    if (it == seen_gpu.end()) {
      obs = INFINITY;
      continue;
    }
    const float scale = std::max({std::fabs(mm.first), std::fabs(mm.second), 1e-12f});
    obs = std::max(obs, double(std::max(std::fabs(it->second.first - mm.first), std::fabs(it->second.second - mm.second)) / scale));
  }
  r.check(tag + "observer: every site seen, ranges agree", obs, 1e-4);

  quant::ActQuantState st;
  auto uniform_for = [&](quant::Site site, int block) {
    const auto mm = seen_cpu[{int(site), block}];
    return quant::uniform_from_range(mm.first, mm.second, 8);
  };
  st.patch_in = uniform_for(quant::Site::PatchIn, -1);
  st.head_in = uniform_for(quant::Site::HeadIn, -1);
  st.blocks.resize(size_t(c.depth) * quant::kBlockSites);
  for (int l = 0; l < c.depth; ++l)
    for (int si = int(quant::Site::QkvIn); si <= int(quant::Site::Fc2In); ++si) {
      const auto site = quant::Site(si);
      if (site == quant::Site::Probs) {
        quant::TensorQuant q;
        q.kind = quant::QuantKind::Log2;
        q.bits = 4;
        q.scale = 1.0f;
        st.at(site, l) = q;
      } else {
        st.at(site, l) = uniform_for(site, l);
      }
    }
  m.cpu.set_act_quant(&st);
  m.gpu.set_act_quant(&st);
  // Weights on a grid of 1/64 (what a fake-quantized copy looks like to the engine).
  float* qc = m.cpu.quant_params();
  float* qg = m.gpu.quant_params();
  for (size_t i = 0; i < params.size(); ++i) qc[i] = qg[i] = std::nearbyint(params[i] * 64.0f) / 64.0f;
  m.cpu.set_weight_quant(true);
  m.gpu.set_weight_quant(true);
  m.cpu.forward(images.data(), s.batch);
  m.gpu.forward(images.data(), s.batch);
  r.check(tag + "forward: logits", rel_error(m.gpu.logits(), m.cpu.logits(), B * K), 3e-2);
  const std::vector<float> dlogits = randn(B * K, rng, 1.0f / float(B));
  std::vector<float> dc(size_t(B * c.image_len())), dg(dc.size(), NAN);
  m.cpu.backward(dlogits.data(), cpu::TapGrads{}, dc.data(), false);
  m.gpu.backward(dlogits.data(), cuda::TapGrads{}, dg.data(), false);
  r.check(tag + "backward (straight-through): input gradient", rel_error(dg, dc), 3e-2);

  // Weight quantization alone (no activation quantizers): exact same arithmetic as FP32.
  m.cpu.set_act_quant(nullptr);
  m.gpu.set_act_quant(nullptr);
  m.cpu.forward(images.data(), s.batch);
  m.gpu.forward(images.data(), s.batch);
  r.check(tag + "weights only: logits", rel_error(m.gpu.logits(), m.cpu.logits(), B * K), tolerances(GemmMath::Fp32).fwd);
}

template <class F>
void expect_error(Report& r, const std::string& name, const char* code, const std::string& must_contain, F&& fn) {
  try {
    fn();
    r.expect(name, false, "no error was thrown");
  } catch (const spdfq::Error& e) {
    const bool ok = e.code() == code && std::string(e.what()).find(must_contain) != std::string::npos;
    r.expect(name, ok, e.code() + ": " + e.what());
  } catch (const std::exception& e) {
    r.expect(name, false, std::string("not a spdfq::Error: ") + e.what());
  }
}

}  // namespace

int run_model_checks(const Spec& s, Report& r) {
  check_model_math(s, r, GemmMath::Fp32);
  check_model_math(s, r, GemmMath::Tf32);
  check_quantized(s, r);
  return r.failed;
}

int run_error_checks(Report& r) {
  VitConfig c;
  c.image_h = c.image_w = 32;
  c.patch = 8;
  c.dim = 32;
  c.depth = 2;
  c.heads = 2;
  c.mlp_dim = 64;
  c.num_classes = 10;
  const int n = cuda::device_count();
  expect_error(r, "CudaVit on a missing device: E_CONFIG", "E_CONFIG", "cuda:" + std::to_string(n + 3),
               [&] { cuda::CudaVit m(c, n + 3); });
  expect_error(r, "backward before forward: E_STATE", "E_STATE", "forward", [&] {
    cuda::CudaVit m(c, 0);
    std::vector<float> dl(10), di(size_t(c.image_len()));
    m.backward(dl.data(), cuda::TapGrads{}, di.data(), false);
  });
  expect_error(r, "batch over the activation budget: E_MEMORY naming the batch that fits", "E_MEMORY",
               "largest batch that fits", [&] {
                 cuda::CudaVit m(c, 0);
                 m.set_activation_budget(cuda::CudaVit::activation_bytes(c, 3));
                 std::vector<float> img(size_t(8 * c.image_len()));
                 m.forward(img.data(), 8);
               });
  expect_error(r, "cudaMalloc beyond the device: E_MEMORY with sizes", "E_MEMORY", "free of",
               [&] { cuda::DeviceBuffer b(int64_t(1) << 50, "a test buffer"); });
  expect_error(r, "failing CUDA call: E_CUDA naming the call and file:line", "E_CUDA", "check_model.cu:", [&] {
    CUDA_CHECK(cudaSetDevice(n + 100));  // cudaErrorInvalidDevice: detected on the host, not sticky
  });
  expect_error(r, "gemm with a too-small leading dimension: E_TENSOR", "E_TENSOR", "lda", [&] {
    cuda::GemmArgs g;
    g.M = g.N = g.K = 4;
    g.lda = 2;
    g.ldb = g.ldc = 4;
    g.A = g.B = reinterpret_cast<const float*>(256);
    g.C = reinterpret_cast<float*>(256);
    cuda::gemm(g, GemmMath::Tf32, nullptr);
  });
  // The device must still work after the errors above (none of them is sticky).
  expect_error(r, "device usable after the errors: a pass still runs", "E_NONE", "", [&] {
    cuda::CudaVit m(c, 0);
    std::vector<float> img(size_t(2 * c.image_len()), 0.5f);
    m.forward(img.data(), 2);
    throw spdfq::Error("E_NONE", "ran");
  });
  return r.failed;
}

}  // namespace spdfq::check
