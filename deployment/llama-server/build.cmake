# CMake's initial cache for llama-server (cmake -C build.cmake): one static binary, no network code, nothing but the
# server. Built for AVX2 (x86-64-v3), not for the building CPU: a native build on a Xeon with AVX-512 crashed in its
# first completion (general protection fault in libggml-cpu), where this one runs, and a cached binary must run on
# another CI runner's CPU too.
set(CMAKE_BUILD_TYPE Release CACHE STRING "")
set(BUILD_SHARED_LIBS OFF CACHE BOOL "")
set(LLAMA_CURL OFF CACHE BOOL "")
set(LLAMA_OPENSSL OFF CACHE BOOL "")
set(LLAMA_BUILD_TESTS OFF CACHE BOOL "")
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "")
set(LLAMA_BUILD_TOOLS ON CACHE BOOL "")
set(LLAMA_BUILD_SERVER ON CACHE BOOL "")
set(GGML_NATIVE OFF CACHE BOOL "")
set(GGML_AVX ON CACHE BOOL "")
set(GGML_AVX2 ON CACHE BOOL "")
set(GGML_FMA ON CACHE BOOL "")
set(GGML_F16C ON CACHE BOOL "")
