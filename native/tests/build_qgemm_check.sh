#!/usr/bin/env bash
# Builds the standalone integer GEMM / quantized Linear check into /tmp/qgemm-check, or
# $QGEMM_CHECK_OUT. test/native.checks.test.ts builds and runs it in `npm test`.
#   native/tests/build_qgemm_check.sh            optimized build
#   native/tests/build_qgemm_check.sh --asan     + AddressSanitizer/UBSan (slower)
# then: /tmp/qgemm-check/qgemm_check   and   /tmp/qgemm-check/qgemm_check --bench
#
# The per-file ISA flags here are the ones the real build must use (CMakeLists.txt and
# binding.gyp): only the SIMD kernel files get -m flags; everything else, qlinear.cc
# included, must run on any x86-64 CPU.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
native="$here/.."
cpu="$native/cpu"
out="${QGEMM_CHECK_OUT:-/tmp/qgemm-check}"
mkdir -p "$out"

CXX="${CXX:-g++}"
common=(-std=c++17 -O3 -fno-math-errno -fno-trapping-math -Wall -Wextra -pthread -I"$cpu")
if [[ "${1:-}" == "--asan" ]]; then
  common+=(-g -fsanitize=address,undefined -fno-omit-frame-pointer)
  out="$out/asan"
  mkdir -p "$out"
fi

is_x86=0
[[ "$(uname -m)" == "x86_64" ]] && is_x86=1
flags_for() {
  case "$1" in
    gemm_avx2.cc | qgemm_avx2.cc) ((is_x86)) && echo "-mavx2 -mfma" ;;
    gemm_avx512.cc) ((is_x86)) && echo "-mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma -mavx2" ;;
    qgemm_avx512.cc) ((is_x86)) && echo "-mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx512vnni -mfma -mavx2" ;;
    *) echo "" ;;
  esac
}

# The fp32 GEMM is linked for the benchmark's reference figure; quantizer.cc for the
# fake-quant simulation the quantized Linear is checked against.
srcs=("$cpu/qgemm_ref.cc" "$cpu/qgemm_avx2.cc" "$cpu/qgemm_avx512.cc" "$cpu/qgemm_dispatch.cc"
      "$cpu/qlinear.cc" "$cpu/gemm_ref.cc" "$cpu/gemm_avx2.cc" "$cpu/gemm_avx512.cc"
      "$cpu/gemm_dispatch.cc" "$cpu/cpu_features.cc" "$native/core/quantizer.cc"
      "$here/qgemm_check.cc")
objs=()
pids=()
for src in "${srcs[@]}"; do
  f="$(basename "$src")"
  # shellcheck disable=SC2046
  "$CXX" "${common[@]}" $(flags_for "$f") -c "$src" -o "$out/${f%.cc}.o" &
  pids+=($!)
  objs+=("$out/${f%.cc}.o")
done
for p in "${pids[@]}"; do wait "$p"; done  # fail on any compile error (set -e)
"$CXX" "${common[@]}" "${objs[@]}" -o "$out/qgemm_check"
echo "built $out/qgemm_check"
