// Bodies of the row kernels (row_kernels.h), included once per instruction set by
// rows_avx512.cc, rows_avx2.cc and rows_generic.cc inside their own namespace. The math is
// core/fast_math.h's, shared with CUDA; `omp simd reduction` (-fopenmp-simd: pragmas only,
// no OpenMP runtime) lets the compiler reorder the float sums into vector lanes.
// The including file has already included <cmath>, ../core/activation_math.h and row_kernels.h
// (outside any namespace); this file holds only the bodies.

namespace {

void softmax_rows(float* s, int rows, int n) {
  for (int i = 0; i < rows; ++i) {
    float* r = s + int64_t(i) * n;
    float mx = r[0];
#pragma omp simd reduction(max : mx)
    for (int j = 1; j < n; ++j) mx = r[j] > mx ? r[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; ++j) {
      const float e = ::spdfq::fast_exp(r[j] - mx);
      r[j] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < n; ++j) r[j] *= inv;
  }
}

void softmax_backward_rows(float* d, const float* p, int rows, int n) {
  for (int i = 0; i < rows; ++i) {
    const float* pr = p + int64_t(i) * n;
    float* dr = d + int64_t(i) * n;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < n; ++j) dot += pr[j] * dr[j];
#pragma omp simd
    for (int j = 0; j < n; ++j) dr[j] = pr[j] * (dr[j] - dot);
  }
}

void layernorm_rows(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                    int64_t rows, int D, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = inp + r * D;
    float* y = out + r * D;
    float m = 0.0f;
#pragma omp simd reduction(+ : m)
    for (int i = 0; i < D; ++i) m += x[i];
    m /= D;
    float v = 0.0f;  // two-pass variance: rows are short, and it avoids E[x²]−m² cancellation
#pragma omp simd reduction(+ : v)
    for (int i = 0; i < D; ++i) {
      const float d = x[i] - m;
      v += d * d;
    }
    v /= D;
    const float s = 1.0f / ::std::sqrt(v + eps);
#pragma omp simd
    for (int i = 0; i < D; ++i) y[i] = (x[i] - m) * s * w[i] + b[i];
    mean[r] = m;
    rstd[r] = s;
  }
}

void layernorm_backward_rows(float* dinp, const float* dout, const float* inp, const float* w, const float* mean,
                             const float* rstd, int64_t rows, int D) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = inp + r * D;
    const float* g = dout + r * D;
    float* dx = dinp + r * D;
    const float m = mean[r], s = rstd[r];
    float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
#pragma omp simd reduction(+ : sum_dy, sum_dy_xhat)
    for (int i = 0; i < D; ++i) {
      const float dy = g[i] * w[i];
      sum_dy += dy;
      sum_dy_xhat += dy * (x[i] - m) * s;
    }
    sum_dy /= D;
    sum_dy_xhat /= D;
#pragma omp simd
    for (int i = 0; i < D; ++i) {
      const float xhat = (x[i] - m) * s;
      dx[i] += s * (g[i] * w[i] - sum_dy - xhat * sum_dy_xhat);
    }
  }
}

template <::spdfq::Activation A>
void activation_loop(float* out, const float* inp, int64_t b, int64_t e) {
#pragma omp simd
  for (int64_t i = b; i < e; ++i) out[i] = ::spdfq::activate<A>(inp[i]);
}

void activation(float* out, const float* inp, int64_t b, int64_t e, ::spdfq::Activation kind) {
  ::spdfq::with_activation(kind, [&](auto tag) { activation_loop<decltype(tag)::value>(out, inp, b, e); });
}

template <::spdfq::Activation A>
void activation_grad_loop(float* dinp, const float* dout, const float* inp, int64_t b, int64_t e, bool accumulate) {
  // Two loops rather than a select inside one: each stays a plain vectorizable stream, and
  // the overwrite form never reads dinp (it may be uninitialized scratch).
  if (accumulate) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) dinp[i] += dout[i] * ::spdfq::activate_grad<A>(inp[i]);
  } else {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) dinp[i] = dout[i] * ::spdfq::activate_grad<A>(inp[i]);
  }
}

void activation_grad(float* dinp, const float* dout, const float* inp, int64_t b, int64_t e, ::spdfq::Activation kind,
                     bool accumulate) {
  ::spdfq::with_activation(
      kind, [&](auto tag) { activation_grad_loop<decltype(tag)::value>(dinp, dout, inp, b, e, accumulate); });
}

}  // namespace
