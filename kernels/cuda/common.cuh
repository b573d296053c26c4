// What every kernel shares: the logit storage types (f32, f16, bf16 read into f32 and written
// back with round-to-nearest-even, as core's `Logit`), the row status codes, the launch shape
// and the block reductions. Reductions run as a fixed binary tree over the block's threads in
// shared memory, never atomics, so every result repeats bit for bit run to run.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

// Threads per block; every kernel runs one block per row. The driver reads this number from
// `bnf_kernels::THREADS`, which must match.
#define BNF_THREADS 256

// Row status written by every kernel (0: fine). Mirrors core's `BnfError` variants, checked in
// core's order: target, weight, logits, reference log-prob (statistics: row_grad only).
#define BNF_OK 0
#define BNF_TARGET_OUT_OF_RANGE 1
#define BNF_INVALID_WEIGHT 2
#define BNF_NON_FINITE_LOGITS 3
#define BNF_INVALID_REF_LOGP 4
#define BNF_INVALID_STATS 5

// Declares the dynamic shared memory array `name` (a macro so that the host emulator in
// kernels/emu can supply its own storage).
#ifndef BNF_DYNAMIC_SHARED
#define BNF_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif

// Logit differences below this are clamped (core's `D_FLOOR`), so a -inf logit gives e = 0 and
// e * d = 0 instead of NaN.
#define BNF_D_FLOOR (-3.40282347e38f)

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// `e^max(d, D_FLOOR)`: core's `exp_clamped`.
__device__ __forceinline__ float exp_clamped(float d) { return expf(d < BNF_D_FLOOR ? BNF_D_FLOOR : d); }

// Whether row `r` counts (`scored` null: every row counts).
__device__ __forceinline__ bool is_scored(const unsigned char* scored, long long r) {
    return scored == nullptr || scored[r] != 0;
}

// Max over the block of one value per thread; NaN is skipped as in core's `max_of`. Every
// thread gets the result. `sh` holds BNF_THREADS floats.
__device__ __forceinline__ float block_max(float v, float* sh) {
    const int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = BNF_THREADS / 2; s > 0; s >>= 1) {
        if (t < s) {
            const float o = sh[t + s];
            sh[t] = o > sh[t] ? o : sh[t];
        }
        __syncthreads();
    }
    const float m = sh[0];
    __syncthreads();
    return m;
}

// Sums over the block of two values per thread, in f64, in a fixed tree order. Every thread
// gets the results. `sh` holds 2 * BNF_THREADS doubles.
__device__ __forceinline__ void block_sum2(double a, double b, double* sh, double* out_a, double* out_b) {
    const int t = threadIdx.x;
    sh[t] = a;
    sh[BNF_THREADS + t] = b;
    __syncthreads();
    for (int s = BNF_THREADS / 2; s > 0; s >>= 1) {
        if (t < s) {
            sh[t] += sh[t + s];
            sh[BNF_THREADS + t] += sh[BNF_THREADS + t + s];
        }
        __syncthreads();
    }
    *out_a = sh[0];
    *out_b = sh[BNF_THREADS];
    __syncthreads();
}
