#!/usr/bin/env bash
# Builds the standalone GEMM check into /tmp/gemm-check, or $GEMM_CHECK_OUT (no cmake-js / node
# needed). test/native.checks.test.ts builds and runs it in `npm test`.
#   native/tests/build_gemm_check.sh            optimized build
#   native/tests/build_gemm_check.sh --asan     + AddressSanitizer/UBSan (slower)
# then: /tmp/gemm-check/gemm_check   and   /tmp/gemm-check/gemm_check --bench
#
# The per-file ISA flags here are the ones the real build must use: only the SIMD
# kernel files get -m flags; everything else must run on any x86-64 CPU.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cpu="$here/../cpu"
out="${GEMM_CHECK_OUT:-/tmp/gemm-check}"
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
    gemm_avx2.cc)   ((is_x86)) && echo "-mavx2 -mfma" ;;
    gemm_avx512.cc) ((is_x86)) && echo "-mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma -mavx2" ;;
    *) echo "" ;;
  esac
}

objs=()
for f in gemm_ref.cc gemm_avx2.cc gemm_avx512.cc gemm_dispatch.cc cpu_features.cc; do
  # shellcheck disable=SC2046
  "$CXX" "${common[@]}" $(flags_for "$f") -c "$cpu/$f" -o "$out/${f%.cc}.o" &
  objs+=("$out/${f%.cc}.o")
done
"$CXX" "${common[@]}" -c "$here/gemm_check.cc" -o "$out/gemm_check.o" &
wait
"$CXX" "${common[@]}" "${objs[@]}" "$out/gemm_check.o" -o "$out/gemm_check"
echo "built $out/gemm_check"
