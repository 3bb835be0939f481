// Soft-label Learning (SL) targets. [summary] A logit vector Z is zero except at the
// relevant classes, where Z_c ~ U(ε1, ε2) (ε1 = 5, ε2 = 10); the target is softmax(Z),
// trained with the soft cross-entropy −Σ T·log softmax(logits).
#pragma once

#include <cstdint>

namespace spdfq::synth {

// t [K] = softmax(Z) with Z_c = logits[i] at classes[i] (i < n), 0 elsewhere. A class
// listed twice keeps its larger logit ([ours]: a class is relevant once).
void soft_label_row(float* t, int K, const int32_t* classes, const float* logits, int n);

}  // namespace spdfq::synth
