# node-gyp build of the same CPU sources as CMakeLists.txt (`npm run build:native:gyp`).
# The SIMD GEMMs need their own ISA flags, which gyp sets per target, so each lives in a
# small static library linked into the addon; everything else builds for baseline x86-64.
{
  "variables": {
    "spdfq_cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-std=c++17", "-fexceptions", "-fPIC"]
  },
  "targets": [
    {
      "target_name": "spdfq_gemm_avx2",
      "type": "static_library",
      "sources": ["native/cpu/gemm_avx2.cc", "native/cpu/qgemm_avx2.cc", "native/cpu/rows_avx2.cc"],
      "cflags_cc": ["<@(spdfq_cflags)", "-mavx2", "-mfma"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"]
    },
    {
      "target_name": "spdfq_gemm_avx512",
      "type": "static_library",
      "sources": ["native/cpu/gemm_avx512.cc", "native/cpu/qgemm_avx512.cc"],
      "cflags_cc": ["<@(spdfq_cflags)", "-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mavx512vnni", "-mfma", "-mavx2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"]
    },
    {
      "target_name": "spdfq_rows_avx512",
      "type": "static_library",
      "sources": ["native/cpu/rows_avx512.cc"],
      "cflags_cc": ["<@(spdfq_cflags)", "-mavx512f", "-mfma", "-mavx2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"]
    },
    {
      "target_name": "spdfq_native",
      "dependencies": ["spdfq_gemm_avx2", "spdfq_gemm_avx512", "spdfq_rows_avx512"],
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('native', { recursive: true }).filter(f => /^(core|cpu|synth|quant|binding)\\/[^/]+\\.cc$/.test(f) && !/_avx(2|512)\\.cc$/.test(f)).map(f => 'native/' + f).join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["<@(spdfq_cflags)"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "ldflags": ["-pthread"]
    }
  ]
}
