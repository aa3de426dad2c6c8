/* fastact's XLA FFI handlers for CUDA (fastact._cuda): xla_ffi.c's, launching
 * the CUDA kernels of src/cuda on XLA's stream. */
#define FA_XLA_CUDA 1
#include "xla_ffi.c"
