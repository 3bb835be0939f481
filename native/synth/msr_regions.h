// Multi-Semantic Reinforcement (MSR) regions: where they lie, and the crop + bilinear
// resize that makes each an image of its own (forward) and scatters its gradient back
// into the box (backward, the exact adjoint of forward).
//
// [summary] m ~ U{1..K_MSR} non-overlapping regions per image per step. [ours] the image
// is split into a grid × grid of cells (cell edges at floor(i·H/grid)); m distinct cells
// are chosen, and inside each a box whose sides are s × the cell's sides, s ~ U[min, max]
// (one s for both axes, so the box keeps the cell's aspect), at a uniform position.
// Distinct cells make the boxes disjoint; boxes are integer pixel rectangles.
#pragma once

#include <cstdint>
#include <vector>

#include "rng.h"

namespace spdfq::synth {

struct RegionSpec {
  int max_regions = 4;
  int grid = 2;
  float box_min = 0.5f, box_max = 1.0f;
  bool flip = true;  // flip each resized region horizontally with p = 0.5
};

struct Region {
  int image;            // which synthetic image
  int cell;             // cell index, row-major in the grid
  int y0, x0, h, w;     // box in pixels, inside the cell
  bool flip;            // the resized region is mirrored horizontally
};

// Appends the regions of images [0, B) to `out`, image by image.
void sample_regions(std::vector<Region>* out, int B, int H, int W, const RegionSpec& spec, Rng& rng);

// out [C, outH, outW] = bilinear resize of image[:, y0:y0+h, x0:x0+w] ([C, H, W] image),
// PyTorch F.interpolate(mode='bilinear', align_corners=False) semantics, then mirrored if
// r.flip.
void crop_resize_forward(float* out, const float* image, int C, int H, int W, const Region& r, int outH, int outW);
// The adjoint: ADDS the gradient of dout [C, outH, outW] into dimage [C, H, W], which
// only ever touches pixels inside the box.
void crop_resize_backward(float* dimage, const float* dout, int C, int H, int W, const Region& r, int outH, int outW);

}  // namespace spdfq::synth
