/*
 * The CUDA kernels alone, without Python: GB/s of PReLU (NCHW and NHWC),
 * leaky_relu and ELU through the same C entry points fastact._cuda calls,
 * against cudaMemcpyAsync (device to device) and an a + b kernel, on float32
 * (64, 64, 128, 128) (256 MiB per tensor).  Each figure is the median of 15
 * batches of 10 launches queued back to back, timed with CUDA events.
 *
 *   nvcc -O3 -std=c++17 -fmad=false -gencode=arch=compute_90,code=sm_90 \
 *        -Isrc -Isrc/cuda tools/cuda_kernel_bench.cu -o cuda_kernel_bench
 *   ./cuda_kernel_bench
 *
 * (-DFA_UNROLL=n and -DFA_ROW_CHUNK=n try other loop shapes.)
 */
#include "../src/cuda/fastact_cuda.cu"

#include <algorithm>
#include <vector>

/* The read-two-write-one ceiling, with the kernels' own loop shape. */
__global__ void add_kernel(const float4 *a, const float4 *b, float4 *c, int64_t n)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += 4 * step) {
        float4 x[4], y[4];
        for (int u = 0; u < 4; u++)
            if (i + u * step < n) {
                x[u] = a[i + u * step];
                y[u] = b[i + u * step];
            }
        for (int u = 0; u < 4; u++)
            if (i + u * step < n)
                c[i + u * step] = make_float4(x[u].x + y[u].x, x[u].y + y[u].y,
                                              x[u].z + y[u].z, x[u].w + y[u].w);
    }
}

template <class F>
static double ms_per_call(F launch, int batch = 10, int reps = 15)
{
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    for (int i = 0; i < 3; i++)
        launch();
    std::vector<float> t;
    for (int r = 0; r < reps; r++) {
        cudaEventRecord(a);
        for (int i = 0; i < batch; i++)
            launch();
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        t.push_back(ms / batch);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

int main()
{
    const int64_t N = 64, C = 64, HW = 128 * 128, n = N * C * HW;
    float *x, *g, *y, *gi, *slopes;
    double *grad;
    cudaMalloc(&x, n * 4);
    cudaMalloc(&g, n * 4);
    cudaMalloc(&y, n * 4);
    cudaMalloc(&gi, n * 4);
    cudaMalloc(&slopes, C * 4);
    cudaMalloc(&grad, C * 8);
    std::vector<float> h(n);
    for (int64_t i = 0; i < n; i++)    /* values in [-1, 1), both signs */
        h[i] = (float)((i * 2654435761u) % 1000) / 500.f - 1.f;
    cudaMemcpy(x, h.data(), n * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(g, h.data(), n * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(slopes, h.data(), C * 4, cudaMemcpyHostToDevice);
    int sms;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    const double leaky[3] = {0.1, 0, 0}, elu[3] = {1.0, 0, 0};

    const double copy = ms_per_call([&] { cudaMemcpyAsync(y, x, n * 4, cudaMemcpyDeviceToDevice, 0); });
    const double add = ms_per_call([&] { add_kernel<<<sms * 8, 256>>>((float4 *)x, (float4 *)g, (float4 *)gi, n / 4); });
    struct Row { const char *name; double ms, ceiling; int bytes; } rows[] = {
        {"prelu forward NCHW", ms_per_call([&] { fa_cuda_prelu_forward(0, FA_DT_F32, x, slopes, 0, 0.0, y, N, C, HW, 0); }), copy, 8},
        {"prelu forward NHWC", ms_per_call([&] { fa_cuda_prelu_forward(0, FA_DT_F32, x, slopes, 0, 0.0, y, N * HW, C, 1, 0); }), copy, 8},
        {"leaky_relu forward", ms_per_call([&] { fa_cuda_unary_forward(0, FA_OP_LEAKY_RELU, FA_DT_F32, leaky, x, y, n, 0); }), copy, 8},
        {"elu forward", ms_per_call([&] { fa_cuda_unary_forward(0, FA_OP_ELU, FA_DT_F32, elu, x, y, n, 0); }), copy, 8},
        {"prelu backward NCHW", ms_per_call([&] { fa_cuda_prelu_backward(0, FA_DT_F32, g, x, slopes, 0, 0.0, gi, grad, FA_DT_F64, 0, N, C, HW, 0); }), add, 12},
        {"prelu backward NHWC", ms_per_call([&] { fa_cuda_prelu_backward(0, FA_DT_F32, g, x, slopes, 0, 0.0, gi, grad, FA_DT_F64, 0, N * HW, C, 1, 0); }), add, 12},
        {"leaky_relu backward", ms_per_call([&] { fa_cuda_unary_backward(0, FA_OP_LEAKY_RELU, FA_DT_F32, leaky, g, x, gi, n, 0); }), add, 12},
    };
    const cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess) {
        fprintf(stderr, "CUDA error: %s (%s)\n", cudaGetErrorString(err), fa_cuda_error_message());
        return 1;
    }
    printf("FA_UNROLL=%d FA_ROW_CHUNK=%d, float32 (64, 64, 128, 128)\n", FA_UNROLL, FA_ROW_CHUNK);
    printf("  %-22s %8.0f GB/s\n", "copy (ceiling)", 8.0 * n / copy / 1e6);
    printf("  %-22s %8.0f GB/s\n", "a + b (ceiling)", 12.0 * n / add / 1e6);
    for (const Row &r : rows)
        printf("  %-22s %8.0f GB/s  %.3f of %s\n", r.name, r.bytes * (double)n / r.ms / 1e6,
               r.ceiling / r.ms, r.ceiling == copy ? "the copy" : "a + b");
    return 0;
}
