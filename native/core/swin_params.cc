#include "swin_params.h"

#include <algorithm>
#include <climits>
#include <functional>

namespace spdfq {

namespace {

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Walks torchvision's state_dict order once; `visit(name, shape, slot)` receives the
// pointer field to bind (optional tensors are simply not visited).
void walk_swin_params(const SwinConfig& c, SwinParams* p,
                      const std::function<void(const std::string&, std::vector<int64_t>, float**)>& visit) {
  const int64_t D0 = c.dim(0);
  visit("features.0.0.weight", {D0, c.channels, c.patch, c.patch}, &p->patch_w);
  visit("features.0.0.bias", {D0}, &p->patch_b);
  visit("features.0.2.weight", {D0}, &p->patch_norm_w);
  visit("features.0.2.bias", {D0}, &p->patch_norm_b);
  p->blocks.resize(size_t(c.blocks()));
  p->merges.resize(size_t(c.stages() - 1));
  for (int s = 0; s < c.stages(); ++s) {
    const int64_t D = c.dim(s), M = c.mlp_dim(s), H = c.heads[size_t(s)];
    for (int i = 0; i < c.depths[size_t(s)]; ++i) {
      SwinBlockParams& b = p->blocks[size_t(swin_block_index(c, s, i))];
      const std::string pre = "features." + std::to_string(1 + 2 * s) + "." + std::to_string(i) + ".";
      visit(pre + "norm1.weight", {D}, &b.norm1_w);
      visit(pre + "norm1.bias", {D}, &b.norm1_b);
      visit(pre + "attn.relative_position_bias_table", {c.bias_table_rows(), H}, &b.rel_bias);
      visit(pre + "attn.qkv.weight", {3 * D, D}, &b.qkv_w);
      if (c.qkv_bias) visit(pre + "attn.qkv.bias", {3 * D}, &b.qkv_b);
      visit(pre + "attn.proj.weight", {D, D}, &b.proj_w);
      visit(pre + "attn.proj.bias", {D}, &b.proj_b);
      visit(pre + "norm2.weight", {D}, &b.norm2_w);
      visit(pre + "norm2.bias", {D}, &b.norm2_b);
      visit(pre + "mlp.0.weight", {M, D}, &b.fc1_w);
      visit(pre + "mlp.0.bias", {M}, &b.fc1_b);
      visit(pre + "mlp.3.weight", {D, M}, &b.fc2_w);
      visit(pre + "mlp.3.bias", {D}, &b.fc2_b);
    }
    if (s + 1 < c.stages()) {
      SwinMergeParams& m = p->merges[size_t(s)];
      const std::string pre = "features." + std::to_string(2 + 2 * s) + ".";
      visit(pre + "reduction.weight", {2 * D, 4 * D}, &m.reduction_w);
      if (c.reduction_bias) visit(pre + "reduction.bias", {2 * D}, &m.reduction_b);
      visit(pre + "norm.weight", {4 * D}, &m.norm_w);
      visit(pre + "norm.bias", {4 * D}, &m.norm_b);
    }
  }
  const int64_t F = c.features(), K = c.num_classes;
  visit("norm.weight", {F}, &p->norm_w);
  visit("norm.bias", {F}, &p->norm_b);
  visit("head.weight", {K, F}, &p->head_w);
  visit("head.bias", {K}, &p->head_b);
}

}  // namespace

int swin_block_index(const SwinConfig& c, int s, int i) {
  int l = 0;
  for (int t = 0; t < s; ++t) l += c.depths[size_t(t)];
  return l + i;
}

std::vector<ParamInfo> plan_swin_params(const SwinConfig& c) {
  std::vector<ParamInfo> out;
  SwinParams scratch{};
  int64_t offset = 0;
  walk_swin_params(c, &scratch, [&](const std::string& name, std::vector<int64_t> shape, float**) {
    const int64_t n = numel(shape);
    out.push_back({name, std::move(shape), offset, n});
    offset += n;
  });
  return out;
}

int64_t swin_param_count(const SwinConfig& c) {
  int64_t total = 0;
  for (const auto& p : plan_swin_params(c)) total += p.size;
  return total;
}

SwinParams bind_swin_params(const SwinConfig& c, float* arena) {
  SwinParams p{};
  int64_t offset = 0;
  walk_swin_params(c, &p, [&](const std::string&, std::vector<int64_t> shape, float** slot) {
    *slot = arena + offset;
    offset += numel(shape);
  });
  return p;
}

// ------------------------------------------------------------------------ activations

int64_t plan_swin_activations(const SwinConfig& c, int batch, float* arena, SwinActs* a, bool quant_probs) {
  int64_t used = 0;
  auto take = [&](int64_t n) {
    float* p = arena ? arena + used : nullptr;
    used += (n + 15) / 16 * 16;
    return p;
  };
  const int64_t B = batch, N = c.window_tokens();
  SwinActs tmp;
  SwinActs& x = a ? *a : tmp;
  const int64_t R0 = B * c.tokens(0), D0 = c.dim(0);
  x.patches = take(R0 * c.patch_len());
  x.patch_proj = take(R0 * D0);
  x.x0 = take(R0 * D0);
  x.x0_mean = take(R0);
  x.x0_rstd = take(R0);
  x.blocks.resize(size_t(c.blocks()));
  x.merges.resize(size_t(c.stages() - 1));
  for (int s = 0; s < c.stages(); ++s) {
    const int64_t R = B * c.tokens(s), Rw = B * c.windows(s) * N, D = c.dim(s), M = c.mlp_dim(s);
    const int64_t H = c.heads[size_t(s)];
    for (int i = 0; i < c.depths[size_t(s)]; ++i) {
      SwinBlockActs& b = x.blocks[size_t(swin_block_index(c, s, i))];
      b.ln1 = take(R * D);
      b.ln1_mean = take(R);
      b.ln1_rstd = take(R);
      b.win = take(Rw * D);
      b.qkv = take(Rw * 3 * D);
      b.att = take(B * c.windows(s) * H * N * N);
      b.att_q = quant_probs ? take(B * c.windows(s) * H * N * N) : nullptr;
      b.av = take(Rw * D);
      b.proj = take(Rw * D);
      b.sum1 = take(R * D);
      b.ln2 = take(R * D);
      b.ln2_mean = take(R);
      b.ln2_rstd = take(R);
      b.fc1 = take(R * M);
      b.act = take(R * M);
      b.out = take(R * D);
    }
    if (s + 1 < c.stages()) {
      const int64_t R2 = B * c.tokens(s + 1);
      SwinMergeActs& m = x.merges[size_t(s)];
      m.cat = take(R2 * 4 * D);
      m.ln = take(R2 * 4 * D);
      m.mean = take(R2);
      m.rstd = take(R2);
      m.out = take(R2 * 2 * D);
    }
  }
  const int last = c.stages() - 1;
  const int64_t RL = B * c.tokens(last), F = c.features();
  x.fnorm = take(RL * F);
  x.fnorm_mean = take(RL);
  x.fnorm_rstd = take(RL);
  x.pooled = take(B * F);
  x.logits = take(B * c.num_classes);
  return used;
}

int64_t plan_swin_grads(const SwinConfig& c, int batch, int64_t att_scratch_floats, float* arena, SwinGrads* g) {
  const int64_t B = batch, N = c.window_tokens(), F = c.features();
  int64_t tok = 0, cat = 0, win = 0, hid = 0;  // the widest use of each kind over the stages
  for (int s = 0; s < c.stages(); ++s) {
    const int64_t R = B * c.tokens(s), D = c.dim(s);
    tok = std::max(tok, R * D);
    win = std::max(win, B * c.windows(s) * N * D);
    hid = std::max(hid, R * c.mlp_dim(s));
    if (s + 1 < c.stages()) cat = std::max(cat, B * c.tokens(s + 1) * 4 * D);
  }
  int64_t used = 0;
  auto take = [&](int64_t n) {
    float* p = arena ? arena + used : nullptr;
    used += (n + 15) / 16 * 16;
    return p;
  };
  SwinGrads tmp;
  SwinGrads& x = g ? *g : tmp;
  x.dres = take(tok);
  x.dtmp = take(std::max(tok, cat));
  x.dcat = take(cat);
  x.dwin = take(win);
  x.dav = take(win);
  x.dqkv = take(3 * win);
  x.dhid = take(hid);
  x.dhid2 = take(hid);
  x.dpool = take(B * F);
  x.dpatches = take(B * c.tokens(0) * c.patch_len());
  x.att_scratch = take(att_scratch_floats);
  return used;
}

// ------------------------------------------------------------------------ index tables

namespace {

// Python's slice bounds on a sequence of length n (start/stop may be negative; kNone = None).
constexpr int kNone = INT_MIN;
int py_bound(int v, int n, int if_none) {
  if (v == kNone) return if_none;
  if (v < 0) v += n;
  return v < 0 ? 0 : (v > n ? n : v);
}

}  // namespace

SwinIndices make_swin_indices(const SwinConfig& c) {
  SwinIndices out;
  std::vector<int32_t>& d = out.data;
  const int wh = c.window_h, ww = c.window_w, N = wh * ww;

  // relative_position_index (ShiftedWindowAttention.define_relative_position_index):
  // for tokens i = (yi, xi), j = (yj, xj) of one window,
  // ((yi − yj) + wh − 1)·(2·ww − 1) + (xi − xj) + ww − 1.
  out.rel_index_at = int64_t(d.size());
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const int dy = i / ww - j / ww + wh - 1, dx = i % ww - j % ww + ww - 1;
      d.push_back(int32_t(dy * (2 * ww - 1) + dx));
    }

  for (int s = 0; s < c.stages(); ++s) {
    const int H = c.grid_h(s), W = c.grid_w(s), Hp = c.padded_h(s), Wp = c.padded_w(s);
    const int nwx = Wp / ww, nW = c.windows(s);
    const bool shifts = c.shift_h(s) + c.shift_w(s) > 0;
    SwinIndices::StageAt at{};
    for (int v = 0; v < 2; ++v) {
      const int sh = v == 1 ? c.shift_h(s) : 0, sw = v == 1 ? c.shift_w(s) : 0;
      // Window token (w, t) sits at (ry, rx) of the rolled padded grid; torch.roll by
      // −shift means it holds padded position ((ry + sh) mod Hp, (rx + sw) mod Wp).
      at.src[v] = int64_t(d.size());
      std::vector<int32_t> dst(size_t(H) * W, -1);
      for (int w = 0; w < nW; ++w)
        for (int t = 0; t < N; ++t) {
          const int ry = (w / nwx) * wh + t / ww, rx = (w % nwx) * ww + t % ww;
          const int y = (ry + sh) % Hp, x = (rx + sw) % Wp;
          const bool real = y < H && x < W;
          d.push_back(real ? int32_t(y * W + x) : -1);
          if (real) dst[size_t(y) * W + x] = int32_t(w * N + t);
        }
      at.dst[v] = int64_t(d.size());
      d.insert(d.end(), dst.begin(), dst.end());
    }
    at.region = -1;
    if (shifts) {
      // The attention mask's regions: torchvision labels the rolled padded grid with the
      // 3×3 slices ((0, −w), (−w, −shift), (−shift, None)) per axis, in this order, later
      // slices overwriting earlier ones (Python slice semantics, also when a shift is 0).
      const int sh = c.shift_h(s), sw = c.shift_w(s);
      const int hs[3][2] = {{0, -wh}, {-wh, -sh}, {-sh, kNone}};
      const int ws[3][2] = {{0, -ww}, {-ww, -sw}, {-sw, kNone}};
      std::vector<int32_t> label(size_t(Hp) * Wp, 0);
      int count = 0;
      for (const auto& hsl : hs)
        for (const auto& wsl : ws) {
          const int y0 = py_bound(hsl[0], Hp, 0), y1 = py_bound(hsl[1], Hp, Hp);
          const int x0 = py_bound(wsl[0], Wp, 0), x1 = py_bound(wsl[1], Wp, Wp);
          for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x) label[size_t(y) * Wp + x] = count;
          ++count;
        }
      at.region = int64_t(d.size());
      for (int w = 0; w < nW; ++w)
        for (int t = 0; t < N; ++t) {
          const int ry = (w / nwx) * wh + t / ww, rx = (w % nwx) * ww + t % ww;
          d.push_back(label[size_t(ry) * Wp + rx]);
        }
    }
    out.stages.push_back(at);
  }
  return out;
}

SwinIndexView SwinIndices::bind(const int32_t* base) const {
  SwinIndexView v;
  v.rel_index = base + rel_index_at;
  for (const StageAt& at : stages) {
    SwinStageIndex s{};
    for (int k = 0; k < 2; ++k) {
      s.src[k] = base + at.src[k];
      s.dst[k] = base + at.dst[k];
    }
    s.region = at.region >= 0 ? base + at.region : nullptr;
    v.stages.push_back(s);
  }
  return v;
}

}  // namespace spdfq
