# Every third-party dependency is found here, once (STYLE.md rule 15). scripts/install-deps.sh installs them.
include_guard(GLOBAL)

find_package(Threads REQUIRED)
find_package(absl REQUIRED CONFIG)
find_package(nlohmann_json REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
# Boost.Asio / Beast (header-only): every HTTP endpoint (the router's OpenAI API, the daemons' /metrics),
# asynchronous, no thread per connection.
find_package(Boost 1.74 REQUIRED)
# HTTPS on the router's HTTP API (Asio's OpenSSL streams); Debian: libssl-dev.
find_package(OpenSSL REQUIRED)
if(TANDEM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(TANDEM_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# CUDA: AUTO builds the CUDA backend when nvcc is found; ON requires it; OFF never builds it.
set(TANDEM_CUDA_ENABLED OFF)
if(NOT TANDEM_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(TANDEM_CUDA_ENABLED ON)
    # A100 (sm_80), L40S / RTX 4090 (sm_89), H100 / H200 (sm_90a); set before the language is enabled.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "80;89;90a")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
  elseif(TANDEM_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TANDEM_WITH_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "tandem: CUDA backend ${TANDEM_CUDA_ENABLED}")

# gRPC and protobuf. Debian ships gRPC's CMake config, whose targets name protobuf::libprotobuf: CMake's
# FindProtobuf module defines it, so it is found first.
find_package(Protobuf REQUIRED)
find_package(gRPC REQUIRED CONFIG)
set(TANDEM_PROTOBUF_LIB protobuf::libprotobuf)
find_program(TANDEM_PROTOC protoc REQUIRED)
find_program(TANDEM_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
