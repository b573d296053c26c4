// The two row primitives, mirroring core's `row.rs` function for function:
// `row_stats` (max, lse, ell, S, S', and the others' dot sum relative to the max, as core's
// `RowStats`) and `row_grad` (write w * (softmax - onehot), in place or out of place).
//
// One block handles one row. Thread t visits columns t, t + BNF_THREADS, ... in increasing
// order, accumulating in f32; the per-thread partials are then summed in f64 by a fixed tree.
#pragma once

#include "common.cuh"

// Core's `RowStats`, field for field (the order of the 6 floats the row_stats kernel writes).
struct RowStats {
    float max;
    float lse;
    float ell;
    float sum;
    float others_sum;
    float others_dot;
};

// log(pi_y / (1 - pi_y)) = (z_y - m) - ln S', +inf when S' = 0: core's `RowStats::log_odds_y`
// (1 - pi_y is S'/S, never 1 - e^ell).
__device__ __forceinline__ float log_odds_y(const RowStats& st) {
    return st.others_sum > 0.0f ? st.ell - (logf(st.others_sum) - logf(st.sum)) : INFINITY;
}

// T'/S' - lse, the other tokens' mean log-prob under their renormalised distribution; 0 when
// S' = 0: core's `RowStats::others_mean_logp`.
__device__ __forceinline__ float others_mean_logp(const RowStats& st) {
    return st.others_sum > 0.0f ? st.others_dot / st.others_sum - logf(st.sum) : 0.0f;
}

// Row statistics of z (length V) with target y (< V). When `cache` is not null it holds room
// for the row in shared memory: the max pass copies the row there and later passes read it
// from there (one read of device memory per row). Returns false when core's `row_stats`
// would report `NonFiniteLogits`. All threads of the block must call it.
template <typename T>
__device__ bool row_stats(const T* z, unsigned V, unsigned y, T* cache, RowStats* st, float* shf, double* shd) {
    float m = -INFINITY;
    for (unsigned j = threadIdx.x; j < V; j += BNF_THREADS) {
        const T v = z[j];
        if (cache != nullptr) cache[j] = v;
        const float f = to_f32(v);
        m = f > m ? f : m;
    }
    m = block_max(m, shf);  // its barriers also publish the cache
    const T* src = cache != nullptr ? cache : z;
    float s = 0.0f, t = 0.0f;
    for (unsigned j = threadIdx.x; j < V; j += BNF_THREADS) {
        if (j == y) continue;
        float d = to_f32(src[j]) - m;
        d = d < BNF_D_FLOOR ? BNF_D_FLOOR : d;
        const float e = expf(d);
        s += e;
        t += e * d;
    }
    double s_tot, t_tot;
    block_sum2((double)s, (double)t, shd, &s_tot, &t_tot);
    const float d_y = to_f32(src[y]) - m;
    const float e_y = expf(d_y);
    const float others_sum = (float)s_tot;
    const float others_dot = (float)t_tot;
    const float sum = (float)(s_tot + (double)e_y);
    if (!(isfinite(m) && isfinite(d_y) && isfinite(sum) && isfinite(others_dot))) return false;
    const float ln_s = logf(sum);
    st->max = m;
    st->lse = m + ln_s;
    st->ell = d_y - ln_s;
    st->sum = sum;
    st->others_sum = others_sum;
    st->others_dot = others_dot;
    return true;
}

// Core's `check_grad_inputs`, in its order: y in range, a finite weight, and statistics a row
// can have (S >= 1 and finite, max finite, 0 <= S' <= S; NaN fails every comparison). Returns
// the row status.
__device__ __forceinline__ int check_grad_inputs(unsigned V, unsigned y, const RowStats& st, float w) {
    if (y >= V) return BNF_TARGET_OUT_OF_RANGE;
    if (!isfinite(w)) return BNF_INVALID_WEIGHT;
    const bool plausible = isfinite(st.sum) && st.sum >= 1.0f && isfinite(st.max) && st.others_sum >= 0.0f &&
                           st.others_sum <= st.sum;
    return plausible ? BNF_OK : BNF_INVALID_STATS;
}

// `out[j] = (w / S) e^(z_j - m)` for j != y and `out[y] = -(w / S) S'`: core's `row_grad`.
// `src` is the row (or its shared-memory copy); `out` may be the row itself (in place): each
// element is read and then written by the same thread.
template <typename T>
__device__ void row_grad(const T* src, T* out, unsigned V, unsigned y, const RowStats& st, float w) {
    const float scale = w / st.sum;
    for (unsigned j = threadIdx.x; j < V; j += BNF_THREADS) {
        const float g = j == y ? -scale * st.others_sum : scale * exp_clamped(to_f32(src[j]) - st.max);
        out[j] = from_f32<T>(g);
    }
}

// A zero gradient row (masked rows).
template <typename T>
__device__ void zero_row(T* out, unsigned V) {
    for (unsigned j = threadIdx.x; j < V; j += BNF_THREADS) out[j] = from_f32<T>(0.0f);
}
