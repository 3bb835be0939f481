// Op-level checks: every CUDA layer op against the CPU engine's reference kernels
// (native/cpu, reference mode: scalar GEMM, double-precision attention) on random data at
// a model's shapes, and the integer GEMM against exact int64 arithmetic.
#include <algorithm>
#include <cstring>
#include <tuple>

#include "check_util.h"
#include "../../native/binding/config_names.h"
#include "ops.h"
#include "qgemm.h"
#include "../../native/cpu/gemm.h"
#include "../../native/cpu/ops.h"

namespace spdfq::check {

namespace {

cpu::Exec ref_exec() {
  cpu::Exec e;
  e.reference = true;
  e.gemm = cpu::GemmVariant::Ref;
  return e;
}

std::string math_tag(GemmMath m) { return std::string("[") + cuda::gemm_math_name(m) + "] "; }

// One GEMM layout/shape against gemm_ref. Checks the M×N result and that nothing outside
// it (the ldc padding) was written; with beta == 0 the output starts as NaN (never read).
void check_gemm(Report& r, Rng& rng, GemmMath math, bool ta, bool tb, int M, int N, int K, float alpha, float beta,
                bool bias, int pad, int batch_outer = 1, int batch_inner = 1) {
  const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  const int64_t a_rows = ta ? K : M, b_rows = tb ? N : K;
  const int64_t sa = a_rows * lda, sb = b_rows * ldb, sc = int64_t(M) * ldc;  // per matrix
  const int nb = batch_outer * batch_inner;
  std::vector<float> A = randn(sa * nb, rng), B = randn(sb * nb, rng), C = randn(sc * nb, rng),
                     bv = randn(N, rng);
  std::vector<float> ref = C, init = C;
  for (int z = 0; z < nb; ++z) {
    cpu::GemmArgs g;
    g.transA = ta;
    g.transB = tb;
    g.M = M;
    g.N = N;
    g.K = K;
    g.alpha = alpha;
    g.A = A.data() + z * sa;
    g.lda = int(lda);
    g.B = B.data() + z * sb;
    g.ldb = int(ldb);
    g.beta = beta;
    g.C = ref.data() + z * sc;
    g.ldc = int(ldc);
    cpu::gemm_ref(g);
    if (bias)
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) ref[size_t(z * sc + i * ldc + j)] += bv[size_t(j)];
    if (beta == 0.0f)
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) init[size_t(z * sc + i * ldc + j)] = NAN;
  }
  Dev<float> dA(A), dB(B), dC(init), dbias(bv);
  cuda::GemmArgs g;
  g.transA = ta;
  g.transB = tb;
  g.M = M;
  g.N = N;
  g.K = K;
  g.alpha = alpha;
  g.A = dA.p();
  g.lda = lda;
  g.B = dB.p();
  g.ldb = ldb;
  g.beta = beta;
  g.C = dC.p();
  g.ldc = ldc;
  g.bias = bias ? dbias.p() : nullptr;
  // Batch z = (o, i): the checker lays matrices back to back, so stride_outer = inner·stride.
  g.batch_outer = batch_outer;
  g.batch_inner = batch_inner;
  g.strideA_inner = sa;
  g.strideA_outer = sa * batch_inner;
  g.strideB_inner = sb;
  g.strideB_outer = sb * batch_inner;
  g.strideC_inner = sc;
  g.strideC_outer = sc * batch_inner;
  cuda::gemm(g, math, nullptr);
  const std::vector<float> out = dC.get();
  std::vector<float> got, want;
  bool padding_intact = true;
  for (int64_t e = 0; e < sc * nb; ++e) {
    const int64_t col = (e % sc) % ldc;
    if (col < N) {
      got.push_back(out[size_t(e)]);
      want.push_back(ref[size_t(e)]);
    } else if (std::memcmp(&out[size_t(e)], &init[size_t(e)], sizeof(float)) != 0) {
      padding_intact = false;
    }
  }
  char name[160];
  std::snprintf(name, sizeof name, "gemm %c%c %dx%dx%d a=%.2g b=%.2g%s pad=%d batch=%dx%d", ta ? 'T' : 'N',
                tb ? 'T' : 'N', M, N, K, double(alpha), double(beta), bias ? " +bias" : "", pad, batch_outer,
                batch_inner);
  r.check(math_tag(math) + name, rel_error(got, want), tolerances(math).gemm);
  if (!padding_intact) r.expect(math_tag(math) + name + ": ldc padding untouched", false);
}

void check_gemms(const Spec& s, Report& r, Rng& rng) {
  const int R = s.batch * s.c.tokens(), D = s.c.dim, M = s.c.mlp_dim, N = s.c.tokens(), hd = s.c.head_dim();
  for (GemmMath math : {GemmMath::Fp32, GemmMath::Tf32}) {
    check_gemm(r, rng, math, false, true, R, 3 * D, D, 1.0f, 0.0f, true, 0);   // qkv forward (NT + bias)
    check_gemm(r, rng, math, false, false, R, D, M, 1.0f, 1.0f, false, 0);    // fc2 dinp (NN, accumulate)
    check_gemm(r, rng, math, true, false, D, M, R, 1.0f, 1.0f, false, 0);     // fc1 dW (TN)
    check_gemm(r, rng, math, true, true, 37, 53, 29, 0.5f, 0.25f, false, 3);  // TT, odd sizes, padded
    check_gemm(r, rng, math, false, true, 1, 1, 1, 2.0f, 0.0f, true, 1);
    check_gemm(r, rng, math, false, true, 65, 129, 33, 1.0f, 0.0f, false, 1);
    check_gemm(r, rng, math, false, true, N, N, hd, 0.125f, 0.0f, false, 0, s.batch, s.c.heads);  // scores
    check_gemm(r, rng, math, true, false, N, hd, N, 1.0f, 1.0f, false, 0, s.batch, s.c.heads);    // dV
  }
}

void check_layernorm(const Spec& s, Report& r, Rng& rng, const cuda::Ctx& ctx) {
  const int64_t R = int64_t(s.batch) * s.c.tokens();
  const int D = s.c.dim;
  std::vector<float> x = randn(R * D, rng, 2.0f), w = randn(D, rng, 0.5f), b = randn(D, rng, 0.5f);
  for (auto& v : x) v += 3.0f;
  std::vector<float> out(size_t(R * D)), mean(static_cast<size_t>(R)), rstd(static_cast<size_t>(R));
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), R, D, s.c.ln_eps,
                         ref_exec());
  Dev<float> dx(x), dw(w), db(b), dout(R * D), dmean(R), drstd(R);
  dout.poison();
  cuda::layernorm_forward(dout.p(), dmean.p(), drstd.p(), dx.p(), dw.p(), db.p(), R, D, s.c.ln_eps, ctx);
  r.check("layernorm forward out", rel_error(dout.get(), out), 1e-5);
  r.check("layernorm forward mean", rel_error(dmean.get(), mean), 1e-5);
  r.check("layernorm forward rstd", rel_error(drstd.get(), rstd), 1e-5);

  std::vector<float> g = randn(R * D, rng), dinp = randn(R * D, rng), gw = randn(D, rng), gb = randn(D, rng);
  std::vector<float> dinp_ref = dinp, gw_ref = gw, gb_ref = gb;
  cpu::layernorm_backward(dinp_ref.data(), gw_ref.data(), gb_ref.data(), g.data(), x.data(), w.data(), mean.data(),
                          rstd.data(), R, D, ref_exec());
  Dev<float> dg(g), ddinp(dinp), dgw(gw), dgb(gb), dm(mean), dr(rstd);
  cuda::layernorm_backward(ddinp.p(), dgw.p(), dgb.p(), dg.p(), dx.p(), dw.p(), dm.p(), dr.p(), R, D, ctx);
  r.check("layernorm backward dinp (+=)", rel_error(ddinp.get(), dinp_ref), 1e-5);
  r.check("layernorm backward dw (+=)", rel_error(dgw.get(), gw_ref), 1e-5);
  r.check("layernorm backward db (+=)", rel_error(dgb.get(), gb_ref), 1e-5);
}

void check_elementwise(const Spec& s, Report& r, Rng& rng, const cuda::Ctx& ctx) {
  const int64_t n = int64_t(s.batch) * s.c.tokens() * s.c.mlp_dim;
  std::vector<float> x = randn(n, rng, 3.0f), g = randn(n, rng), acc = randn(n, rng);
  Dev<float> dx(x), dg(g), dout(n);
  for (const auto& [name, k] : binding::kActivationNames) {
    const std::string tag = name;
    std::vector<float> out(static_cast<size_t>(n)), din = acc;
    cpu::activation_forward(out.data(), x.data(), n, k, ref_exec());
    cpu::activation_backward(din.data(), g.data(), x.data(), n, k, ref_exec());
    dout.poison();
    cuda::activation_forward(dout.p(), dx.p(), n, k, ctx);
    r.check(tag + " forward", rel_error(dout.get(), out), 1e-6);
    Dev<float> ddin(acc);
    cuda::activation_backward(ddin.p(), dg.p(), dx.p(), n, k, ctx);
    r.check(tag + " backward (+=)", rel_error(ddin.get(), din), 1e-6);
  }
  {
    std::vector<float> sum(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) sum[size_t(i)] = x[size_t(i)] + g[size_t(i)];
    Dev<float> da(x);
    cuda::residual_forward(da.p(), da.p(), dg.p(), n, ctx);  // aliasing out == a, as the engine does
    r.check("residual add (in place)", rel_error(da.get(), sum), 0.0);
  }
  {  // column sums with a padded row stride and a scale
    const int64_t rows = int64_t(s.batch) * s.c.tokens();
    const int cols = 3 * s.c.dim;
    const int64_t ld = cols + 5;
    std::vector<float> in = randn(rows * ld, rng), out0 = randn(cols, rng), want = out0;
    for (int c = 0; c < cols; ++c) {
      double t = 0.0;
      for (int64_t i = 0; i < rows; ++i) t += in[size_t(i * ld + c)];
      want[size_t(c)] += float(0.5 * t);
    }
    Dev<float> din(in), dsum(out0);
    cuda::column_sum_accumulate(dsum.p(), din.p(), rows, cols, ld, 0.5f, ctx);
    r.check("column sums (+=, scaled, strided)", rel_error(dsum.get(), want), 1e-5);
  }
}

void check_fake_quant(const Spec& s, Report& r, Rng& rng, const cuda::Ctx& ctx) {
  const int64_t rows = int64_t(s.batch) * s.c.tokens(), cols = s.c.dim, ld = 3 * s.c.dim;
  std::vector<float> x = randn(rows * ld, rng, 2.0f);
  const quant::TensorQuant qu = quant::uniform_from_range(-3.0f, 5.0f, 8);
  quant::TensorQuant ql;
  ql.kind = quant::QuantKind::Log2;
  ql.bits = 4;
  ql.scale = 1.0f;
  for (const auto& [name, q, src] : {std::tuple<const char*, quant::TensorQuant, int>{"uniform u8", qu, 0},
                                     std::tuple<const char*, quant::TensorQuant, int>{"log2 4-bit", ql, 1}}) {
    std::vector<float> in = x;
    if (src == 1)  // probabilities: positive, many orders of magnitude
      for (auto& v : in) v = std::exp(-std::fabs(v) * 4.0f);
    std::vector<float> want = in;
    for (int64_t i = 0; i < rows; ++i) quant::fake_quant_tensor(want.data() + i * ld, cols, q);
    Dev<float> d(in);
    cuda::fake_quant(d.p(), rows, cols, ld, q, ctx);
    const std::vector<float> got = d.get();
    int64_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], sizeof(float)) != 0;
    // Uniform: same IEEE operations on both sides, bit-identical. Log2 goes through log2f
    // and exp2f, whose device versions are not correctly rounded (1-2 ulp): values within
    // an ulp of a rounding boundary may land one level apart; allow 0.1% of them.
    const int64_t allowed = src == 0 ? 0 : int64_t(got.size()) / 1000;
    r.expect(std::string("fake quant ") + name + " (strided)", differ <= allowed,
             std::to_string(differ) + " of " + std::to_string(got.size()) + " differ (allowed " +
                 std::to_string(allowed) + ")");
  }
}

void check_attention(const Spec& s, Report& r, Rng& rng, GemmMath math, float* scratch, int64_t scratch_n) {
  const cuda::Ctx ctx{nullptr, math, scratch, scratch_n};
  const int B = s.batch, N = s.c.tokens(), H = s.c.heads, hd = s.c.head_dim(), D = s.c.dim;
  const int64_t nqkv = int64_t(B) * N * 3 * D, natt = int64_t(B) * H * N * N, nav = int64_t(B) * N * D;
  const Tol tol = tolerances(math);
  std::vector<float> qkv = randn(nqkv, rng, 1.5f);
  const quant::TensorQuant pq = quant::uniform_from_range(0.0f, 1.0f, 8);
  for (bool quantized : {false, true}) {
    const std::string tag = math_tag(math) + (quantized ? "attention (probs fake-quantized) " : "attention ");
    std::vector<float> av(static_cast<size_t>(nav)), att(static_cast<size_t>(natt)), attq(static_cast<size_t>(natt));
    cpu::attention_forward(av.data(), att.data(), qkv.data(), B, N, H, hd, ref_exec(), quantized ? &pq : nullptr,
                           attq.data());
    Dev<float> dqkv_in(qkv), dav(nav), datt(natt), dattq(natt);
    dav.poison();
    datt.poison();
    cuda::attention_forward(dav.p(), datt.p(), dqkv_in.p(), B, N, H, hd, ctx, quantized ? &pq : nullptr, dattq.p());
    r.check(tag + "forward probabilities", rel_error(datt.get(), att), math == GemmMath::Fp32 ? 1e-5 : tol.fwd);
    r.check(tag + "forward A·V", rel_error(dav.get(), av), quantized ? 3e-2 : tol.fwd);

    // Backward from the CPU's probabilities (isolates the backward), with and without an
    // injected gradient at the probabilities.
    for (bool extra : {false, true}) {
      std::vector<float> dav_in = randn(nav, rng), dextra = randn(natt, rng, 0.1f), dq0 = randn(nqkv, rng);
      std::vector<float> dq_ref = dq0;
      cpu::attention_backward(dq_ref.data(), dav_in.data(), extra ? dextra.data() : nullptr, att.data(),
                              quantized ? attq.data() : att.data(), qkv.data(), B, N, H, hd, nullptr, ref_exec());
      Dev<float> d_dav(dav_in), d_extra(dextra), d_att(att), d_attq(attq), d_dq(dq0), d_scr(natt);
      cuda::attention_backward(d_dq.p(), d_dav.p(), extra ? d_extra.p() : nullptr, d_att.p(),
                               quantized ? d_attq.p() : d_att.p(), dqkv_in.p(), B, N, H, hd, d_scr.p(), ctx);
      r.check(tag + (extra ? "backward dqkv (+=, tap gradient)" : "backward dqkv (+=)"), rel_error(d_dq.get(), dq_ref),
              tol.bwd);
    }
  }
}

void check_embed_and_head(const Spec& s, Report& r, Rng& rng, GemmMath math, const cuda::Ctx& ctx_in) {
  cuda::Ctx ctx = ctx_in;
  ctx.math = math;
  const VitConfig& c = s.c;
  const int B = s.batch, N = c.tokens(), D = c.dim, P = c.patches(), pre = c.prefix(), K = c.num_classes;
  const int hin = c.dist_token ? 2 : 1;
  const int64_t nimg = int64_t(B) * c.image_len(), npatch = int64_t(B) * P * c.patch_len();
  const Tol tol = tolerances(math);
  if (math == GemmMath::Fp32) {  // the GEMM-free ops once
    std::vector<float> img = randn(nimg, rng), patches(static_cast<size_t>(npatch));
    cpu::patchify(patches.data(), img.data(), B, c, ref_exec());
    Dev<float> dimg(img), dpatch(npatch);
    dpatch.poison();
    cuda::patchify(dpatch.p(), dimg.p(), B, c, ctx);
    r.check("patchify (im2col)", rel_error(dpatch.get(), patches), 0.0);
    std::vector<float> dp = randn(npatch, rng), back = randn(nimg, rng);
    std::vector<float> back_ref = back;
    cpu::unpatchify_accumulate(back_ref.data(), dp.data(), B, c, ref_exec());
    Dev<float> ddp(dp), dback(back);
    cuda::unpatchify_accumulate(dback.p(), ddp.p(), B, c, ctx);
    r.check("unpatchify (+=)", rel_error(dback.get(), back_ref), 0.0);

    // Token assembly and its backward, against plain loops (CpuVit::forward / embed_backward).
    std::vector<float> proj = randn(int64_t(B) * P * D, rng), cls = randn(D, rng), dist = randn(D, rng),
                       pos = randn(int64_t(N) * D, rng), x0(size_t(B) * N * D);
    for (int b = 0; b < B; ++b)
      for (int n = 0; n < N; ++n)
        for (int i = 0; i < D; ++i) {
          const float src = n == 0 && c.class_token ? cls[size_t(i)]
                            : n == 1 && c.dist_token ? dist[size_t(i)]
                                                     : proj[(size_t(b) * P + size_t(n - pre)) * D + size_t(i)];
          x0[(size_t(b) * N + size_t(n)) * D + size_t(i)] = src + pos[size_t(n) * D + size_t(i)];
        }
    Dev<float> dproj(proj), dcls(cls), ddist(dist), dpos(pos), dx0(int64_t(B) * N * D);
    dx0.poison();
    cuda::embed_tokens(dx0.p(), dproj.p(), dcls.p(), ddist.p(), dpos.p(), B, c, ctx);
    r.check("embed tokens (+ position)", rel_error(dx0.get(), x0), 0.0);
    std::vector<float> g = randn(int64_t(B) * N * D, rng), gpos0 = randn(int64_t(N) * D, rng), gcls0 = randn(D, rng),
                       gdist0 = randn(D, rng);
    std::vector<float> gpos = gpos0, gcls = gcls0, gdist = gdist0, gproj(size_t(B) * P * D);
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < D; ++i) {
        float t = 0.0f;
        for (int b = 0; b < B; ++b) {
          const float d = g[(size_t(b) * N + size_t(n)) * D + size_t(i)];
          t += d;
          if (n >= pre) gproj[(size_t(b) * P + size_t(n - pre)) * D + size_t(i)] = d;
        }
        gpos[size_t(n) * D + size_t(i)] += t;
        if (n == 0 && c.class_token) gcls[size_t(i)] += t;
        if (n == 1 && c.dist_token) gdist[size_t(i)] += t;
      }
    Dev<float> dg(g), dgpos(gpos0), dgcls(gcls0), dgdist(gdist0), dgproj(int64_t(B) * P * D);
    dgproj.poison();
    cuda::embed_tokens_backward(dgproj.p(), dgpos.p(), dgcls.p(), dgdist.p(), dg.p(), B, c, ctx);
    r.check("embed tokens backward dproj", rel_error(dgproj.get(), gproj), 0.0);
    r.check("embed tokens backward dpos (+=)", rel_error(dgpos.get(), gpos), 1e-6);
    if (c.class_token) r.check("embed tokens backward dcls (+=)", rel_error(dgcls.get(), gcls), 1e-6);
    if (c.dist_token) r.check("embed tokens backward ddist (+=)", rel_error(dgdist.get(), gdist), 1e-6);

    // Pooling. Mean pooling starts after the prefix tokens, or at token 0 for MeanAll (pool_start).
    const int ps = c.pool_start();
    std::vector<float> tok = randn(int64_t(B) * N * D, rng), pooled(size_t(B) * hin * D, 0.0f);
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < hin * D; ++i) {
        if (c.pooling == Pooling::Token) {
          pooled[size_t(b) * hin * D + size_t(i)] = tok[size_t(b) * N * D + size_t(i)];
        } else if (i < D) {
          float t = 0.0f;
          for (int n = ps; n < N; ++n) t += tok[(size_t(b) * N + size_t(n)) * D + size_t(i)];
          pooled[size_t(b) * hin * D + size_t(i)] = t * (1.0f / float(N - ps));
        }
      }
    Dev<float> dtok(tok), dpool(int64_t(B) * hin * D);
    dpool.poison();
    cuda::pool_forward(dpool.p(), dtok.p(), B, c, ctx);
    r.check("pool forward", rel_error(dpool.get(), pooled), 1e-6);
    std::vector<float> gp = randn(int64_t(B) * hin * D, rng), gt(size_t(B) * N * D, 0.0f);
    for (int b = 0; b < B; ++b)
      for (int n = 0; n < N; ++n)
        for (int i = 0; i < D; ++i) {
          float v = 0.0f;
          if (c.pooling == Pooling::Token) {
            if (n < hin) v = gp[(size_t(b) * hin + size_t(n)) * D + size_t(i)];
          } else if (n >= ps) {
            v = gp[size_t(b) * hin * D + size_t(i)] * (1.0f / float(N - ps));
          }
          gt[(size_t(b) * N + size_t(n)) * D + size_t(i)] = v;
        }
    Dev<float> dgp(gp), dgt(int64_t(B) * N * D);
    dgt.poison();
    cuda::pool_backward(dgt.p(), dgp.p(), B, c, ctx);
    r.check("pool backward", rel_error(dgt.get(), gt), 1e-6);

    // Cross-entropy against the CPU (double log-softmax on both sides).
    std::vector<float> logits = randn(int64_t(B) * K, rng, 3.0f), targets(size_t(B) * K), dl(size_t(B) * K);
    std::vector<int32_t> labels(static_cast<size_t>(B));
    for (int b = 0; b < B; ++b) {
      labels[size_t(b)] = int32_t(rng.next() % uint64_t(K));
      float t = 0.0f;
      for (int k = 0; k < K; ++k) t += (targets[size_t(b) * K + size_t(k)] = rng.uniform());
      for (int k = 0; k < K; ++k) targets[size_t(b) * K + size_t(k)] /= t;
    }
    Dev<float> dlogits(logits), dtargets(targets), ddl(int64_t(B) * K);
    Dev<int32_t> dlabels(labels);
    Dev<double> rows(B);
    const double lh = cpu::cross_entropy_hard(dl.data(), logits.data(), labels.data(), B, K);
    ddl.poison();
    const double gh = cuda::cross_entropy_hard(ddl.p(), dlogits.p(), dlabels.p(), B, K, rows.p(), ctx);
    r.check("cross-entropy hard: loss", std::fabs(gh - lh) / std::fabs(lh), 1e-9);
    r.check("cross-entropy hard: dlogits", rel_error(ddl.get(), dl), 1e-6);
    const double ls = cpu::cross_entropy_soft(dl.data(), logits.data(), targets.data(), B, K);
    ddl.poison();
    const double gs = cuda::cross_entropy_soft(ddl.p(), dlogits.p(), dtargets.p(), B, K, rows.p(), ctx);
    r.check("cross-entropy soft: loss", std::fabs(gs - ls) / std::fabs(ls), 1e-9);
    r.check("cross-entropy soft: dlogits", rel_error(ddl.get(), dl), 1e-6);
  }

  // Head: logits = scale·Σ_h feat_h·W_hᵀ + scale·Σ_h b_h, and its backward (double loops).
  const float scale = c.dist_token ? 0.5f : 1.0f;
  std::vector<float> feat = randn(int64_t(B) * hin * D, rng), w = randn(int64_t(K) * D, rng, 0.2f),
                     bias = randn(K, rng), wd = randn(int64_t(K) * D, rng, 0.2f), bd = randn(K, rng);
  std::vector<float> logits(size_t(B) * K);
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < K; ++k) {
      double t = 0.0;
      for (int h = 0; h < hin; ++h) {
        const float* W = h == 0 ? w.data() : wd.data();
        for (int i = 0; i < D; ++i)
          t += double(feat[(size_t(b) * hin + size_t(h)) * D + size_t(i)]) * W[size_t(k) * D + size_t(i)];
        t += h == 0 ? bias[size_t(k)] : bd[size_t(k)];
      }
      logits[size_t(b) * K + size_t(k)] = float(scale * t);
    }
  Dev<float> dfeat(feat), dw(w), dbias(bias), dwd(wd), dbd(bd), dlog(int64_t(B) * K);
  dlog.poison();
  cuda::head_forward(dlog.p(), dfeat.p(), dw.p(), dbias.p(), dwd.p(), dbd.p(), B, c, ctx);
  r.check(math_tag(math) + "head forward", rel_error(dlog.get(), logits), tol.fwd);

  std::vector<float> gl = randn(int64_t(B) * K, rng), gfeat(size_t(B) * hin * D);
  std::vector<float> gw0 = randn(int64_t(K) * D, rng), gb0 = randn(K, rng);
  std::vector<float> gw = gw0, gb = gb0, gwd = gw0, gbd = gb0;
  for (int h = 0; h < hin; ++h) {
    const float* W = h == 0 ? w.data() : wd.data();
    std::vector<float>& GW = h == 0 ? gw : gwd;
    std::vector<float>& GB = h == 0 ? gb : gbd;
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < D; ++i) {
        double t = 0.0;
        for (int k = 0; k < K; ++k) t += double(gl[size_t(b) * K + size_t(k)]) * W[size_t(k) * D + size_t(i)];
        gfeat[(size_t(b) * hin + size_t(h)) * D + size_t(i)] = float(scale * t);
      }
    for (int k = 0; k < K; ++k) {
      double tb = 0.0;
      for (int b = 0; b < B; ++b) tb += gl[size_t(b) * K + size_t(k)];
      GB[size_t(k)] += float(scale * tb);
      for (int i = 0; i < D; ++i) {
        double t = 0.0;
        for (int b = 0; b < B; ++b)
          t += double(gl[size_t(b) * K + size_t(k)]) * feat[(size_t(b) * hin + size_t(h)) * D + size_t(i)];
        GW[size_t(k) * D + size_t(i)] += float(scale * t);
      }
    }
  }
  Dev<float> dgl(gl), dgfeat(int64_t(B) * hin * D), dgw(gw0), dgb(gb0), dgwd(gw0), dgbd(gb0);
  dgfeat.poison();
  cuda::head_backward(dgfeat.p(), dgw.p(), dgb.p(), dgwd.p(), dgbd.p(), dgl.p(), dfeat.p(), dw.p(), dwd.p(), B, c,
                      ctx);
  r.check(math_tag(math) + "head backward dfeat", rel_error(dgfeat.get(), gfeat), tol.bwd);
  r.check(math_tag(math) + "head backward dW (+=)", rel_error(dgw.get(), gw), tol.bwd);
  r.check(math_tag(math) + "head backward db (+=)", rel_error(dgb.get(), gb), 1e-5);
  if (c.dist_token) {
    r.check(math_tag(math) + "head backward dW_dist (+=)", rel_error(dgwd.get(), gwd), tol.bwd);
    r.check(math_tag(math) + "head backward db_dist (+=)", rel_error(dgbd.get(), gbd), 1e-5);
  }
}

void check_linear(const Spec& s, Report& r, Rng& rng, GemmMath math, const cuda::Ctx& ctx_in) {
  cuda::Ctx ctx = ctx_in;
  ctx.math = math;
  const int64_t R = int64_t(s.batch) * s.c.tokens();
  const int I = s.c.dim, O = s.c.mlp_dim;
  const Tol tol = tolerances(math);
  std::vector<float> x = randn(R * I, rng), w = randn(int64_t(O) * I, rng, 0.1f), b = randn(O, rng),
                     out(size_t(R * O));
  cpu::linear_forward(out.data(), x.data(), w.data(), b.data(), R, I, O, ref_exec());
  Dev<float> dx(x), dw(w), db(b), dout(R * O);
  dout.poison();
  cuda::linear_forward(dout.p(), dx.p(), dw.p(), db.p(), R, I, O, ctx);
  r.check(math_tag(math) + "linear forward", rel_error(dout.get(), out), tol.gemm);
  std::vector<float> g = randn(R * O, rng), din0 = randn(R * I, rng), gw0 = randn(int64_t(O) * I, rng),
                     gb0 = randn(O, rng);
  std::vector<float> din = din0, gw = gw0, gb = gb0;
  cpu::linear_backward(din.data(), gw.data(), gb.data(), g.data(), x.data(), w.data(), R, I, O, ref_exec());
  Dev<float> dg(g), ddin(din0), dgw(gw0), dgb(gb0);
  cuda::linear_backward(ddin.p(), dgw.p(), dgb.p(), dg.p(), dx.p(), dw.p(), R, I, O, ctx);
  r.check(math_tag(math) + "linear backward dinp (+=)", rel_error(ddin.get(), din), tol.gemm);
  r.check(math_tag(math) + "linear backward dW (+=)", rel_error(dgw.get(), gw), tol.gemm);
  r.check(math_tag(math) + "linear backward db (+=)", rel_error(dgb.get(), gb), 1e-5);
}

// ---- Integer GEMM: exact against int64 loops --------------------------------------------

void check_qgemm_case(Report& r, Rng& rng, cuda::QWeightLayout layout, int M, int N, int K, int pad, bool zero_points,
                      bool float_out) {
  const bool u4 = layout == cuda::QWeightLayout::U4;
  const int64_t lda = K + pad;
  std::vector<uint8_t> A(size_t(M) * size_t(lda));
  for (auto& v : A) v = uint8_t(rng.next() % 256);
  std::vector<int8_t> W(size_t(N) * size_t(K));  // stored values
  for (auto& v : W) v = u4 ? int8_t(rng.next() % 16) : int8_t(int(rng.next() % 256) - 128);
  std::vector<int32_t> row_sum(static_cast<size_t>(M)), col_zero(static_cast<size_t>(N)), col_off(static_cast<size_t>(N));
  std::vector<float> col_scale(static_cast<size_t>(N)), col_bias(static_cast<size_t>(N));
  for (int i = 0; i < M; ++i) {
    int32_t t = 0;
    for (int k = 0; k < K; ++k) t += A[size_t(i) * size_t(lda) + size_t(k)];
    row_sum[size_t(i)] = t;
  }
  for (int j = 0; j < N; ++j) {
    col_zero[size_t(j)] = u4 ? int32_t(rng.next() % 16) : int32_t(rng.next() % 256) - 128;
    col_off[size_t(j)] = int32_t(rng.next() % 200001) - 100000;
    col_scale[size_t(j)] = 1e-3f * (1.0f + rng.uniform());
    col_bias[size_t(j)] = rng.normal();
  }
  // Device weights: S8 rows padded to ldb = K + pad bytes; U4 packed rows (+ pad bytes).
  int64_t ldb;
  std::vector<uint8_t> Bdev;
  if (u4) {
    const int64_t rb = cuda::qgemm_u4_row_bytes(K);
    ldb = rb + pad;
    std::vector<uint8_t> packed(size_t(N) * size_t(rb));
    cuda::qgemm_pack_u4(W.data(), K, N, K, packed.data());
    Bdev.assign(size_t(N) * size_t(ldb), 0xAB);
    for (int n = 0; n < N; ++n) std::memcpy(&Bdev[size_t(n) * size_t(ldb)], &packed[size_t(n) * size_t(rb)], size_t(rb));
  } else {
    ldb = K + pad;
    Bdev.assign(size_t(N) * size_t(ldb), 0xAB);
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) Bdev[size_t(n) * size_t(ldb) + size_t(k)] = uint8_t(W[size_t(n) * size_t(K) + size_t(k)]);
  }
  std::vector<int32_t> want32(size_t(M) * size_t(N));
  std::vector<float> wantf(size_t(M) * size_t(N));
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      int64_t acc = 0;
      for (int k = 0; k < K; ++k) acc += int64_t(A[size_t(i) * size_t(lda) + size_t(k)]) * W[size_t(j) * size_t(K) + size_t(k)];
      if (zero_points) acc += -int64_t(row_sum[size_t(i)]) * col_zero[size_t(j)] + col_off[size_t(j)];
      const int32_t v = int32_t(uint32_t(uint64_t(acc)));
      want32[size_t(i) * size_t(N) + size_t(j)] = v;
      wantf[size_t(i) * size_t(N) + size_t(j)] = std::fma(float(v), col_scale[size_t(j)], col_bias[size_t(j)]);
    }
  Dev<uint8_t> dA(A), dB(Bdev);
  Dev<int32_t> drs(row_sum), dcz(col_zero), dco(col_off), dc32(int64_t(M) * N);
  Dev<float> dcs(col_scale), dcb(col_bias), dcf(int64_t(M) * N);
  cuda::QGemmArgs g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = dA.p();
  g.lda = lda;
  g.layout = layout;
  g.B = dB.p();
  g.ldb = ldb;
  if (zero_points) {
    g.row_sum = drs.p();
    g.col_zero = dcz.p();
    g.col_off = dco.p();
  }
  g.ldc = N;
  if (float_out) {
    g.Cf = dcf.p();
    g.col_scale = dcs.p();
    g.col_bias = dcb.p();
    dcf.poison();
  } else {
    g.C32 = dc32.p();
    dc32.poison();
  }
  cuda::qgemm(g, nullptr);
  bool same;
  if (float_out) {
    const std::vector<float> got = dcf.get();
    same = std::memcmp(got.data(), wantf.data(), got.size() * sizeof(float)) == 0;
  } else {
    same = dc32.get() == want32;
  }
  char name[160];
  std::snprintf(name, sizeof name, "qgemm %s %dx%dx%d pad=%d%s -> %s", u4 ? "u8 x u4" : "u8 x s8", M, N, K, pad,
                zero_points ? " +zero points" : "", float_out ? "f32 (bitwise)" : "s32 (exact)");
  r.expect(name, same);
}

void check_qgemm(const Spec& s, Report& r, Rng& rng) {
  const int R = s.batch * s.c.tokens(), D = s.c.dim;
  for (auto layout : {cuda::QWeightLayout::S8, cuda::QWeightLayout::U4}) {
    check_qgemm_case(r, rng, layout, R, 3 * D, D, 0, true, true);  // a qkv projection
    check_qgemm_case(r, rng, layout, R, D, s.c.mlp_dim, 0, true, false);
    check_qgemm_case(r, rng, layout, 37, 70, 77, 3, true, true);  // odd K, unaligned rows
    check_qgemm_case(r, rng, layout, 5, 3, 1, 1, false, false);
    check_qgemm_case(r, rng, layout, 128, 128, 256, 0, false, true);  // aligned: vector loads
  }
}

}  // namespace

int run_op_checks(const Spec& s, Report& r) {
  Rng rng(12345);
  const int64_t widest = std::max<int64_t>({3 * int64_t(s.c.dim), s.c.mlp_dim, s.c.num_classes});
  Dev<float> scratch(cuda::reduce_scratch_floats(widest));
  const cuda::Ctx ctx{nullptr, GemmMath::Fp32, scratch.p(), scratch.n()};
  check_gemms(s, r, rng);
  check_layernorm(s, r, rng, ctx);
  check_elementwise(s, r, rng, ctx);
  check_fake_quant(s, r, rng, ctx);
  for (GemmMath m : {GemmMath::Fp32, GemmMath::Tf32}) {
    check_attention(s, r, rng, m, scratch.p(), scratch.n());
    check_linear(s, r, rng, m, ctx);
    check_embed_and_head(s, r, rng, m, ctx);
  }
  check_qgemm(s, r, rng);
  CUDA_CHECK(cudaDeviceSynchronize());
  return r.failed;
}

}  // namespace spdfq::check
