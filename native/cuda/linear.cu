// Linear layers as GEMMs on PyTorch's [out, in] weights (as native/cpu/linear.cc):
//   forward  out  = inp · wᵀ + b     (NT, bias in the GEMM epilogue)
//   backward dinp += dout · w         (NN)
//            dw   += doutᵀ · inp      (TN)
//            db   += column sums of dout (deterministic two-stage reduction)
#include <string>

#include "fast_math_cuda.h"  // first: see there
#include "cuda_check.h"
#include "ops.h"

namespace spdfq::cuda {

namespace {
int rows_as_int(int64_t rows) {
  if (rows > 2147483647) fail("E_TENSOR", "CUDA linear: " + std::to_string(rows) + " rows exceed the GEMM's int range");
  return int(rows);
}
}  // namespace

void linear_forward(float* out, const float* inp, const float* w, const float* b, int64_t rows, int I, int O,
                    const Ctx& ctx) {
  GemmArgs g;
  g.transB = true;
  g.M = rows_as_int(rows);
  g.N = O;
  g.K = I;
  g.A = inp;
  g.lda = I;
  g.B = w;
  g.ldb = I;
  g.C = out;
  g.ldc = O;
  g.bias = b;
  gemm(g, ctx.math, ctx.stream);
}

void linear_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                     int64_t rows, int I, int O, const Ctx& ctx) {
  if (dinp) {
    GemmArgs g;
    g.M = rows_as_int(rows);
    g.N = I;
    g.K = O;
    g.A = dout;
    g.lda = O;
    g.B = w;
    g.ldb = I;
    g.beta = 1.0f;
    g.C = dinp;
    g.ldc = I;
    gemm(g, ctx.math, ctx.stream);
  }
  if (dw) {
    GemmArgs g;
    g.transA = true;
    g.M = O;
    g.N = I;
    g.K = rows_as_int(rows);
    g.A = dout;
    g.lda = O;
    g.B = inp;
    g.ldb = I;
    g.beta = 1.0f;
    g.C = dw;
    g.ldc = I;
    gemm(g, ctx.math, ctx.stream);
  }
  if (db) column_sum_accumulate(db, dout, rows, O, O, 1.0f, ctx);
}

}  // namespace spdfq::cuda
