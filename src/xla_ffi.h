/*
 * XLA's foreign function interface (FFI), the part of its C ABI that
 * fastact's handlers use, declared here so that building fastact needs no
 * XLA or JAX.  The layouts are those of xla/ffi/api/c_api.h (API version
 * 0.x; jaxlib ships that header, `jax.ffi.include_dir()`); the names carry
 * fastact's prefix so that a test can include both headers and compare every
 * size and offset (tests/test_jax.py).
 *
 * The handlers (xla_ffi.c) are plain C functions
 *     fa_ffi_error *handler(fa_ffi_call_frame *call_frame);
 * that XLA calls with its arguments, results and attributes, or once at
 * registration with the metadata extension, asking for the API version and
 * traits they were built for.  Both calls check the sizes XLA gives against
 * these declarations and refuse a mismatch with an error naming it.
 */
#ifndef FASTACT_XLA_FFI_H
#define FASTACT_XLA_FFI_H

#include <stddef.h>
#include <stdint.h>

/* The API version these declarations follow: major must match XLA's; XLA
 * accepts a handler whose minor is at most its own. */
#define FA_FFI_API_MAJOR 0
#define FA_FFI_API_MINOR 1

/* a struct's size as XLA counts it: up to its last field, without the
 * trailing padding (XLA_FFI_STRUCT_SIZE) */
#define FA_FFI_STRUCT_SIZE(T, last) (offsetof(T, last) + sizeof(((T *)0)->last))

typedef struct fa_ffi_api fa_ffi_api;           /* opaque beyond its head */
typedef struct fa_ffi_error fa_ffi_error;       /* opaque */
typedef struct fa_ffi_context fa_ffi_context;   /* XLA_FFI_ExecutionContext */

/* XLA_FFI_Extension_Type */
enum { FA_FFI_EXTENSION_METADATA = 1 };

/* XLA_FFI_Extension_Base */
typedef struct fa_ffi_extension {
    size_t struct_size;
    int type;                       /* an enum */
    struct fa_ffi_extension *next;
} fa_ffi_extension;

/* XLA_FFI_Api_Version */
typedef struct {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    int major_version;
    int minor_version;
} fa_ffi_api_version;

/* XLA_FFI_Error_Code (the ones used) */
enum {
    FA_FFI_INVALID_ARGUMENT = 3,
    FA_FFI_RESOURCE_EXHAUSTED = 8,
    FA_FFI_FAILED_PRECONDITION = 9,
    FA_FFI_INTERNAL = 13
};

/* XLA_FFI_Error_Create_Args */
typedef struct {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    const char *message;
    int errc;                       /* XLA_FFI_Error_Code */
} fa_ffi_error_create_args;

/* XLA_FFI_DataType (the ones used) */
enum {
    FA_FFI_S64 = 5,
    FA_FFI_F16 = 10,
    FA_FFI_F32 = 11,
    FA_FFI_F64 = 12,
    FA_FFI_BF16 = 16
};

/* XLA_FFI_Buffer */
typedef struct {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    int dtype;                      /* XLA_FFI_DataType */
    void *data;
    int64_t rank;
    int64_t *dims;
} fa_ffi_buffer;

/* XLA_FFI_ArgType / RetType: buffers only */
enum { FA_FFI_BUFFER = 1 };
/* XLA_FFI_AttrType */
enum { FA_FFI_ATTR_ARRAY = 1, FA_FFI_ATTR_SCALAR = 3 };

/* XLA_FFI_ByteSpan, XLA_FFI_Scalar, XLA_FFI_Array */
typedef struct {
    const char *ptr;
    size_t len;
} fa_ffi_bytespan;

typedef struct {
    int dtype;
    void *value;
} fa_ffi_scalar;

typedef struct {
    int dtype;
    size_t size;
    void *data;
} fa_ffi_array;

/* XLA_FFI_Args, XLA_FFI_Rets, XLA_FFI_Attrs */
typedef struct {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    int64_t size;
    int *types;                     /* XLA_FFI_ArgType */
    void **args;                    /* fa_ffi_buffer * */
} fa_ffi_args;

typedef struct {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    int64_t size;
    int *types;                     /* XLA_FFI_RetType */
    void **rets;                    /* fa_ffi_buffer * */
} fa_ffi_rets;

typedef struct {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    int64_t size;
    int *types;                     /* XLA_FFI_AttrType */
    fa_ffi_bytespan **names;
    void **attrs;                   /* fa_ffi_scalar *, fa_ffi_array * ... */
} fa_ffi_attrs;

/* XLA_FFI_CallFrame (its size is counted up to attrs, as XLA's
 * XLA_FFI_CallFrame_STRUCT_SIZE) */
typedef struct {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    const fa_ffi_api *api;
    fa_ffi_context *ctx;
    int stage;                      /* XLA_FFI_ExecutionStage */
    fa_ffi_args args;
    fa_ffi_rets rets;
    fa_ffi_attrs attrs;
    void *future;                   /* out; not used */
} fa_ffi_call_frame;
#define FA_FFI_CALL_FRAME_SIZE FA_FFI_STRUCT_SIZE(fa_ffi_call_frame, attrs)

/* XLA_FFI_Metadata and XLA_FFI_Metadata_Extension */
typedef struct {
    size_t struct_size;
    fa_ffi_api_version api_version;
    uint32_t traits;                /* XLA_FFI_Handler_Traits */
} fa_ffi_metadata;
#define FA_FFI_METADATA_SIZE FA_FFI_STRUCT_SIZE(fa_ffi_metadata, traits)

typedef struct {
    fa_ffi_extension extension_base;
    fa_ffi_metadata *metadata;
} fa_ffi_metadata_extension;

/* XLA_FFI_Stream_Get_Args, XLA_FFI_DeviceOrdinal_Get_Args (the CUDA handlers) */
typedef struct {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    fa_ffi_context *ctx;
    void *stream;                   /* out: a cudaStream_t */
} fa_ffi_stream_get_args;

typedef struct {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    fa_ffi_context *ctx;
    int32_t device_ordinal;         /* out */
} fa_ffi_device_ordinal_get_args;

typedef fa_ffi_error *fa_ffi_error_create_fn(fa_ffi_error_create_args *args);
typedef fa_ffi_error *fa_ffi_stream_get_fn(fa_ffi_stream_get_args *args);
typedef fa_ffi_error *fa_ffi_device_ordinal_get_fn(fa_ffi_device_ordinal_get_args *args);

/* XLA_FFI_Api up to the last function used, XLA_FFI_DeviceOrdinal_Get (its
 * struct_size says how many of these XLA fills) */
struct fa_ffi_api {
    size_t struct_size;
    fa_ffi_extension *extension_start;
    fa_ffi_api_version api_version;
    const void *internal_api;
    fa_ffi_error_create_fn *error_create;
    void *error_get_message;
    void *error_destroy;
    void *handler_register;
    fa_ffi_stream_get_fn *stream_get;
    void *type_register;
    void *execution_context_get;
    void *state_set;
    void *state_get;
    void *device_memory_allocate;
    void *device_memory_free;
    void *thread_pool_schedule;
    void *thread_pool_num_threads;
    void *future_create;
    void *future_set_available;
    void *future_set_error;
    void *run_id_get;
    fa_ffi_device_ordinal_get_fn *device_ordinal_get;
};
/* how much of fa_ffi_api XLA must fill for a function to be there */
#define FA_FFI_API_HAS(api, field) \
    ((api)->struct_size >= offsetof(fa_ffi_api, field) + sizeof(void *) && \
     (api)->field != NULL)

typedef fa_ffi_error *fa_ffi_handler(fa_ffi_call_frame *call_frame);

/* fastact's handlers, by name (NULL-terminated), for Python to wrap as
 * PyCapsules.  The CPU ones (xla_ffi.c) run fastact's C kernels on the
 * calling thread's team; the CUDA ones (the same source built with
 * FA_XLA_CUDA into fastact._cuda) launch fastact's CUDA kernels on XLA's
 * stream. */
typedef struct {
    const char *name;
    fa_ffi_handler *handler;
} fa_ffi_target;
extern const fa_ffi_target fa_xla_cpu_targets[];
extern const fa_ffi_target fa_xla_cuda_targets[];

#endif
