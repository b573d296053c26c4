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

// Packs of 16 bytes: every row pass visits a row as packs, pack k holding elements
// [k N, k N + N) with N = 16 / sizeof(T) (the last pack may be shorter). Thread t takes packs
// t, t + BNF_THREADS, ... in increasing order, so the order in which a thread accumulates its
// elements depends only on V and never on how the bytes were fetched: a row that starts on a
// 16-byte boundary is read with one 16-byte load per pack, any other row (odd V in f16/bf16,
// a pointer into the middle of a tensor) element by element, with bit-identical results.
template <typename T>
struct Pack {
    static constexpr unsigned N = 16 / sizeof(T);
    static constexpr unsigned BITS = 8 * sizeof(T);
};

// Packs each thread loads before using any of them (loads in flight per thread).
#define BNF_UNROLL 4

// Storage of one element as raw bits and back (`unsigned` holds them, low bits first).
__device__ __forceinline__ unsigned bits_of(float v) { return __float_as_uint(v); }
__device__ __forceinline__ unsigned bits_of(__half v) { return __half_as_ushort(v); }
__device__ __forceinline__ unsigned bits_of(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
template <typename T> __device__ __forceinline__ T from_bits(unsigned b);
template <> __device__ __forceinline__ float from_bits<float>(unsigned b) { return __uint_as_float(b); }
template <> __device__ __forceinline__ __half from_bits<__half>(unsigned b) {
    return __ushort_as_half((unsigned short)b);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_bits<__nv_bfloat16>(unsigned b) {
    return __ushort_as_bfloat16((unsigned short)b);
}

// On the device: 16-byte loads and stores (global stores streaming: a gradient is not read
// again by this kernel, so it should not push the rows still to be re-read out of L2) and the
// launch's dynamic shared memory size. The host emulator supplies its own, which check the
// alignment a 16-byte access needs.
#ifndef BNF_EMU
__device__ __forceinline__ uint4 bnf_load16(const void* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ __forceinline__ void bnf_store16(void* p, uint4 v) { __stcs(reinterpret_cast<uint4*>(p), v); }
__device__ __forceinline__ uint4 bnf_load16_shared(const void* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ __forceinline__ void bnf_store16_shared(void* p, uint4 v) { *reinterpret_cast<uint4*>(p) = v; }
__device__ __forceinline__ unsigned bnf_dynamic_shared_bytes() {
    unsigned n;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(n));
    return n;
}
#define BNF_PRAGMA_UNROLL _Pragma("unroll")
#endif

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<unsigned long long>(p) & 15u) == 0; }

// Word `i` (0..3) of a pack; `i` is a constant after unrolling.
__device__ __forceinline__ unsigned pack_word(const uint4& u, unsigned i) {
    return i == 0 ? u.x : i == 1 ? u.y : i == 2 ? u.z : u.w;
}

// Element `i` of a pack, as f32.
template <typename T>
__device__ __forceinline__ float pack_elem(const uint4& u, unsigned i) {
    const unsigned bit = i * Pack<T>::BITS;
    const unsigned w = pack_word(u, bit / 32) >> (bit % 32);
    return to_f32(from_bits<T>(Pack<T>::BITS == 32 ? w : (w & 0xFFFFu)));
}

// The `n` elements of pack `k` of `row` (n < N: the row's last pack; the rest is zero bits).
// `aligned`: `row` starts on a 16-byte boundary; `shared`: `row` is in shared memory.
template <typename T>
__device__ __forceinline__ uint4 load_pack(const T* row, bool aligned, bool shared, unsigned k, unsigned n) {
    const T* p = row + (unsigned long long)k * Pack<T>::N;
    if (aligned && n == Pack<T>::N) return shared ? bnf_load16_shared(p) : bnf_load16(p);
    unsigned w[4] = {0u, 0u, 0u, 0u};
    BNF_PRAGMA_UNROLL
    for (unsigned i = 0; i < Pack<T>::N; ++i) {
        const unsigned bit = i * Pack<T>::BITS;
        if (i < n) w[bit / 32] |= bits_of(p[i]) << (bit % 32);
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
}

// Store the `n` elements of pack `k` (as load_pack).
template <typename T>
__device__ __forceinline__ void store_pack(T* row, bool aligned, bool shared, unsigned k, unsigned n, const uint4& u) {
    T* p = row + (unsigned long long)k * Pack<T>::N;
    if (aligned && n == Pack<T>::N) {
        if (shared) {
            bnf_store16_shared(p, u);
        } else {
            bnf_store16(p, u);
        }
        return;
    }
    BNF_PRAGMA_UNROLL
    for (unsigned i = 0; i < Pack<T>::N; ++i) {
        const unsigned bit = i * Pack<T>::BITS;
        const unsigned w = pack_word(u, bit / 32) >> (bit % 32);
        if (i < n) p[i] = from_bits<T>(Pack<T>::BITS == 32 ? w : (w & 0xFFFFu));
    }
}

// The pack of N values `g` in storage type T (round to nearest even).
template <typename T>
__device__ __forceinline__ uint4 pack_from_f32(const float* g) {
    unsigned w[4] = {0u, 0u, 0u, 0u};
    BNF_PRAGMA_UNROLL
    for (unsigned i = 0; i < Pack<T>::N; ++i) {
        const unsigned bit = i * Pack<T>::BITS;
        w[bit / 32] |= bits_of(from_f32<T>(g[i])) << (bit % 32);
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
}

// The number of elements of pack k of a row of V.
template <typename T>
__device__ __forceinline__ unsigned pack_len(unsigned V, unsigned k) {
    const unsigned first = k * Pack<T>::N;
    return V - first < Pack<T>::N ? V - first : Pack<T>::N;
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
