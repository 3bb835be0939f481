// The CUDA op checker: every CUDA op and the CUDA model against the CPU engine.
//
//   cuda_ops_check [--spec SPEC]... [--no-builtin] [--only ops|model|swin|errors] [--bench [--batch N]]
//
// SPEC is "name=deit_cls,imageHeight=32,...,batch=2" (scripts/test-gpu.js builds one per
// engine fixture); without --no-builtin, built-in shapes are checked too (small odd ones
// and DeiT-Tiny at 224²). Exit status: 0 all passed; 1 a check failed; 2 no usable CUDA
// device or another setup error (the reason is printed); 3 bad arguments.
#include <cstdlib>
#include <cstring>
#include <map>

#include "check_util.h"
#include "../../native/binding/config_names.h"
#include "device.h"

namespace spdfq::check {

Spec parse_spec(const std::string& text) {
  Spec s;
  std::map<std::string, std::string> kv;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    const size_t eq = item.find('=');
    if (!item.empty()) {
      if (eq == std::string::npos) fail("E_CONFIG", "spec item '" + item + "' is not key=value");
      kv[item.substr(0, eq)] = item.substr(eq + 1);
    }
    start = end + 1;
  }
  auto take = [&](const char* key) -> std::string {
    auto it = kv.find(key);
    if (it == kv.end()) fail("E_CONFIG", std::string("spec lacks '") + key + "'");
    std::string v = it->second;
    kv.erase(it);
    return v;
  };
  auto num = [&](const char* key) { return std::atoi(take(key).c_str()); };
  auto flag = [&](const char* key) {
    const std::string v = take(key);
    return v == "1" || v == "true";
  };
  s.name = take("name");
  VitConfig& c = s.c;
  c.image_h = num("imageHeight");
  c.image_w = num("imageWidth");
  c.channels = num("channels");
  c.patch = num("patchSize");
  c.dim = num("embedDim");
  c.depth = num("depth");
  c.heads = num("numHeads");
  c.mlp_dim = num("mlpDim");
  c.qkv_bias = flag("qkvBias");
  c.class_token = flag("classToken");
  c.dist_token = flag("distToken");
  const std::string pool = take("pooling");
  c.pooling = pool == "mean" ? Pooling::Mean : pool == "mean-all" ? Pooling::MeanAll : Pooling::Token;
  c.norm = take("normPlacement") == "post" ? NormPlacement::Post : NormPlacement::Pre;
  const std::string fn = take("finalNorm");
  c.final_norm = fn == "pooled" ? FinalNorm::Pooled : fn == "none" ? FinalNorm::None : FinalNorm::Tokens;
  c.ln_eps = float(std::atof(take("layerNormEps").c_str()));
  const std::string act = take("activation");
  bool known = false;
  for (const auto& [name, kind] : binding::kActivationNames)
    if (act == name) c.activation = kind, known = true;
  if (!known) fail("E_CONFIG", "spec activation '" + act + "' is not one the engine runs");
  c.patch_input_norm = flag("patchInputNorm");
  c.patch_output_norm = flag("patchOutputNorm");
  c.embed_norm = flag("embedNorm");
  c.num_classes = num("numClasses");
  s.batch = num("batch");
  if (!kv.empty()) fail("E_CONFIG", "spec has unknown key '" + kv.begin()->first + "'");
  c.validate();
  if (s.batch < 1) fail("E_CONFIG", "spec batch must be ≥ 1");
  return s;
}

std::vector<Spec> builtin_specs() {
  std::vector<Spec> out;
  Spec odd;  // nothing a multiple of a tile: 7×7 patches of 35×21 images, head_dim 6
  odd.name = "builtin_odd";
  odd.c.image_h = 35;
  odd.c.image_w = 21;
  odd.c.channels = 3;
  odd.c.patch = 7;
  odd.c.dim = 30;
  odd.c.depth = 2;
  odd.c.heads = 5;
  odd.c.mlp_dim = 70;
  odd.c.num_classes = 13;
  odd.batch = 3;
  out.push_back(odd);
  // The embedding variants of issue #14 on the GPU: LayerNorms around the patch projection
  // and on the tokens, mean over all tokens, SiLU; post-norm with ReLU.
  Spec variants = odd;
  variants.name = "builtin_variants_silu";
  variants.c.patch_input_norm = variants.c.patch_output_norm = variants.c.embed_norm = true;
  variants.c.pooling = Pooling::MeanAll;
  variants.c.final_norm = FinalNorm::Pooled;
  variants.c.activation = Activation::Silu;
  out.push_back(variants);
  Spec relu = odd;
  relu.name = "builtin_postnorm_relu";
  relu.c.norm = NormPlacement::Post;
  relu.c.final_norm = FinalNorm::None;
  relu.c.activation = Activation::Relu;
  out.push_back(relu);
  Spec tiny;  // DeiT-Tiny's block shapes at 224² (fewer blocks, to keep the CPU side quick)
  tiny.name = "builtin_deit_tiny_224_depth2";
  tiny.c.dim = 192;
  tiny.c.heads = 3;
  tiny.c.mlp_dim = 768;
  tiny.c.depth = 2;
  tiny.c.num_classes = 1000;
  tiny.batch = 4;
  out.push_back(tiny);
  return out;
}

}  // namespace spdfq::check

int main(int argc, char** argv) {
  using namespace spdfq;
  using namespace spdfq::check;
  std::vector<std::string> spec_texts;
  bool builtin = true, bench = false;
  std::string only;
  int bench_batch = 64;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--spec" && i + 1 < argc) {
      spec_texts.push_back(argv[++i]);
    } else if (a == "--no-builtin") {
      builtin = false;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--bench") {
      bench = true;
    } else if (a == "--batch" && i + 1 < argc) {
      bench_batch = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--spec SPEC]... [--no-builtin] [--only ops|model|swin|errors] [--bench [--batch N]]\n",
                   argv[0]);
      return 3;
    }
  }
  std::string why;
  const int devices = cuda::device_count(&why);
  if (devices == 0) {
    std::printf("cuda_ops_check: no usable CUDA device: %s\n", why.c_str());
    return 2;
  }
  try {
    cuda::require_device(0);
    std::printf("cuda_ops_check on cuda:0: %s\n", cuda::device_description(0).c_str());
    if (bench) {
      run_bench(bench_batch);
      return 0;
    }
    std::vector<Spec> specs;
    for (const auto& t : spec_texts) specs.push_back(parse_spec(t));
    if (builtin)
      for (const auto& s : builtin_specs()) specs.push_back(s);
    Report total;
    for (const Spec& s : specs) {
      std::printf("\n== %s (batch %d, %d tokens, dim %d, %d heads)\n", s.name.c_str(), s.batch, s.c.tokens(), s.c.dim,
                  s.c.heads);
      Report r;
      r.prefix = s.name + ": ";
      if (only.empty() || only == "ops") run_op_checks(s, r);
      if (only.empty() || only == "model") run_model_checks(s, r);
      total.passed += r.passed;
      total.failed += r.failed;
    }
    if (only.empty() || only == "swin") {
      std::printf("\n== swin (CUDA forward and backward against CpuSwin)\n");
      Report r;
      run_swin_checks(r);
      total.passed += r.passed;
      total.failed += r.failed;
    }
    if (only.empty() || only == "errors") {
      std::printf("\n== error paths\n");
      Report r;
      run_error_checks(r);
      total.passed += r.passed;
      total.failed += r.failed;
    }
    std::printf("\ncuda_ops_check: %d passed, %d failed\n", total.passed, total.failed);
    return total.failed == 0 ? 0 : 1;
  } catch (const spdfq::Error& e) {
    std::printf("cuda_ops_check: %s: %s\n", e.code().c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::printf("cuda_ops_check: unexpected exception: %s\n", e.what());
    return 2;
  }
}
