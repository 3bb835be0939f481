#!/usr/bin/env bash
# Compiles the CUDA backend with warnings as errors, for the two architectures the build
# targets by default (sm_90a: H100/H200; sm_80: A100), without linking or running
# anything — so it works on machines without a GPU. CI (.ci/run) calls it wherever nvcc
# exists and native/cuda/*.cu exist. Exit status: 0 when every file compiled cleanly.
#
#   scripts/check-cuda-build.sh [SOURCE_DIR]     (default: native/cuda)
#   NVCC=/path/to/nvcc JOBS=2 scripts/check-cuda-build.sh
#
# Checked: every SOURCE_DIR/*.cu and test/gpu/*.cu (nvcc, -Werror all-warnings, host
# compiler -Wall -Wextra -Werror), that the plain-C++ headers the binding includes
# (cuda_vit.h, device.h, gemm_math.h) compile with g++ alone, without CUDA headers, and
# that the binding sources compile with SPDFQ_WITH_CUDA defined, where the model wrapper
# also instantiates its generic code for CudaVit (g++ -fsyntax-only; needs node-addon-api,
# skipped without it).
# Objects go to a temporary folder under /tmp, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

src_dir=${1:-native/cuda}
nvcc_bin=${NVCC:-nvcc}
cxx=${CXX:-g++}
jobs=${JOBS:-1}

command -v "$nvcc_bin" >/dev/null || { echo "check-cuda-build: nvcc not found (set NVCC)" >&2; exit 2; }
shopt -s nullglob
sources=("$src_dir"/*.cu test/gpu/*.cu)
shopt -u nullglob
[ ${#sources[@]} -gt 0 ] || { echo "check-cuda-build: no .cu files in $src_dir" >&2; exit 2; }

out=$(mktemp -d /tmp/spdfq-cuda-check.XXXXXX)
trap 'rm -rf "$out"' EXIT

# -gencode for sm_90a rather than the -arch=sm_90a shorthand: both produce sm_90a machine
# code, and the gencode form is the one documented to work for arch-specific (90a)
# targets with this toolkit (HOPPER.md).
flags=(-std=c++17 -O3 --threads 1
  -gencode arch=compute_90a,code=sm_90a
  -gencode arch=compute_80,code=sm_80
  -Werror all-warnings
  -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter
  -I"$src_dir" -I.)

echo "check-cuda-build: $("$nvcc_bin" --version | tail -1)"
echo "check-cuda-build: ${#sources[@]} files, sm_90a + sm_80, warnings as errors, $jobs job(s)"
start=$SECONDS
fail=0
compile() {
  local f=$1 o
  o="$out/$(echo "$f" | tr '/' '_').o"
  if "$nvcc_bin" "${flags[@]}" -c "$f" -o "$o" >"$o.log" 2>&1 && [ ! -s "$o.log" ]; then
    echo "  ok    $f"
  else
    echo "  FAIL  $f"
    sed 's/^/        /' "$o.log"
    return 1
  fi
}
if [ "$jobs" -le 1 ]; then
  for f in "${sources[@]}"; do compile "$f" || fail=1; done
else
  export -f compile
  export out nvcc_bin
  export flags_str="${flags[*]}"
  printf '%s\n' "${sources[@]}" | xargs -P "$jobs" -I{} bash -c 'flags=($flags_str); compile "$1"' _ {} || fail=1
fi

# The binding's view: plain C++ headers, no CUDA include path.
for h in cuda_vit.h device.h gemm_math.h; do
  [ -f "$src_dir/$h" ] || continue
  if echo "#include \"$src_dir/$h\"" | "$cxx" -std=c++17 -Wall -Wextra -Werror -fsyntax-only -x c++ - 2>"$out/hdr.log"; then
    echo "  ok    $src_dir/$h (g++, no CUDA headers)"
  else
    echo "  FAIL  $src_dir/$h must compile as plain C++ for the binding"
    sed 's/^/        /' "$out/hdr.log"
    fail=1
  fi
done

# The binding as the CMake build compiles it when the backend is on: every file, since
# those that visit the engine (vit_engine.h) instantiate their lambdas for CudaVit too.
napi_inc=$(node -p "require('node-addon-api').include_dir" 2>/dev/null || true)
napi_hdr=$(node -p "require('path').dirname(require.resolve('node-api-headers/include/node_api.h'))" 2>/dev/null || true)
if [ -n "$napi_inc" ] && [ -n "$napi_hdr" ]; then
  for f in native/binding/*.cc; do
    if "$cxx" -std=c++17 -fsyntax-only -Wall -Wextra -Werror -Wno-unused-parameter -DSPDFQ_WITH_CUDA \
        -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED \
        -I"$napi_inc" -I"$napi_hdr" "$f" 2>"$out/binding.log"; then
      echo "  ok    $f (g++, SPDFQ_WITH_CUDA)"
    else
      echo "  FAIL  $f with SPDFQ_WITH_CUDA"
      sed 's/^/        /' "$out/binding.log"
      fail=1
    fi
  done
else
  echo "  skip  native/binding with SPDFQ_WITH_CUDA (node-addon-api not installed)"
fi

echo "check-cuda-build: $((SECONDS - start)) s"
if [ $fail -ne 0 ]; then
  echo "check-cuda-build: FAILED" >&2
  exit 1
fi
echo "check-cuda-build: all CUDA sources compile cleanly"
