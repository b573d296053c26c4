// The two row primitives, mirroring core's `row.rs` function for function:
// `row_stats` (max, lse, ell, S, S', and the others' dot sum relative to the max, as core's
// `RowStats`) and `row_grad` (write w * (softmax - onehot), in place or out of place).
//
// One block handles one row, visited as 16-byte packs (common.cuh: thread t takes packs t,
// t + BNF_THREADS, ... in increasing order, accumulating in f32); the per-thread partials are
// then combined in f64 by a fixed tree. A row is read once for its statistics (an online
// maximum with re-based sums) and once for its gradient, which the fused kernel takes from
// shared memory for the part of the row it could keep there.
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

// One thread's running statistics over the elements it has seen: its maximum `m`, and
// `s = sum e^(d)`, `t = sum e^(d) d` over its non-target elements with `d = z - m`.
struct RunningSums {
    float m;
    float s;
    float t;
};

// Re-base the sums on a larger maximum `m_new`: with `delta = m - m_new` (< 0) every `e`
// becomes `e a` (`a = e^delta`) and every `d` becomes `d + delta`, so `s' = a s` and
// `t' = a (t + delta s)`. When `a` underflows to 0 the old elements weigh nothing; `s - s`
// and `t - t` keep a NaN that must reach the final check (a NaN logit).
__device__ __forceinline__ void rebase(RunningSums& r, float m_new) {
    const float delta = r.m - m_new;
    const float a = expf(delta);
    if (a == 0.0f) {
        r.s = r.s - r.s;
        r.t = r.t - r.t;
    } else {
        r.t = a * (r.t + delta * r.s);
        r.s = a * r.s;
    }
    r.m = m_new;
}

// Add pack `k` (its `n` elements in `u`) to the running sums: the pack's maximum first (NaN
// skipped, as core's `max_of`), then each element in order, the target excluded.
template <typename T>
__device__ __forceinline__ void add_pack(RunningSums& r, const uint4& u, unsigned k, unsigned n, unsigned y) {
    constexpr unsigned N = Pack<T>::N;
    float v[N];
    float mp = -INFINITY;
    BNF_PRAGMA_UNROLL
    for (unsigned i = 0; i < N; ++i) {
        v[i] = pack_elem<T>(u, i);
        mp = i < n && v[i] > mp ? v[i] : mp;
    }
    if (mp > r.m) rebase(r, mp);
    BNF_PRAGMA_UNROLL
    for (unsigned i = 0; i < N; ++i) {
        // A -inf logit weighs 0 even while the running maximum is still -inf.
        float d = v[i] == -INFINITY ? BNF_D_FLOOR : v[i] - r.m;
        d = d < BNF_D_FLOOR ? BNF_D_FLOOR : d;
        const float e = expf(d);
        const bool skip = i >= n || k * N + i == y;
        r.s += skip ? 0.0f : e;
        r.t += skip ? 0.0f : e * d;
    }
}

// Row statistics of z (length V) with target y (< V), in one read of the row: each thread
// keeps a running maximum with its sums re-based on it (`rebase`), then the block takes the
// maximum `m` (a fixed tree), every thread re-bases its sums on `m` in f64 and the block sums
// them in f64 in a fixed tree order, so the result repeats bit for bit. The first `cached`
// elements (a multiple of the pack size, or all of the row) are copied to `cache` (shared
// memory) on the way, for row_grad to read them from there. Returns false when core's
// `row_stats` would report `NonFiniteLogits`. All threads of the block must call it.
template <typename T>
__device__ bool row_stats(const T* z, unsigned V, unsigned y, T* cache, unsigned cached, RowStats* st, float* shf,
                          double* shd) {
    constexpr unsigned N = Pack<T>::N;
    const unsigned packs = (V + N - 1) / N;
    const bool aligned = aligned16(z);
    RunningSums r = {-INFINITY, 0.0f, 0.0f};
    for (unsigned k0 = threadIdx.x; k0 < packs; k0 += BNF_UNROLL * BNF_THREADS) {
        uint4 u[BNF_UNROLL];
        BNF_PRAGMA_UNROLL
        for (unsigned i = 0; i < BNF_UNROLL; ++i) {
            const unsigned k = k0 + i * BNF_THREADS;
            if (k < packs) u[i] = load_pack<T>(z, aligned, false, k, pack_len<T>(V, k));
        }
        BNF_PRAGMA_UNROLL
        for (unsigned i = 0; i < BNF_UNROLL; ++i) {
            const unsigned k = k0 + i * BNF_THREADS;
            if (k < packs) {
                const unsigned n = pack_len<T>(V, k);
                if (k * N < cached) store_pack<T>(cache, true, true, k, n, u[i]);
                add_pack<T>(r, u[i], k, n, y);
            }
        }
    }
    const float m = block_max(r.m, shf);  // its barriers also publish the cache
    // This thread's sums re-based on m, in f64 (a thread that saw only -inf has s = t = 0).
    const double delta = (double)r.m - (double)m;
    const double a = exp(delta);
    const double s = a == 0.0 ? (double)(r.s - r.s) : a * (double)r.s;
    const double t = a == 0.0 ? (double)(r.t - r.t) : a * ((double)r.t + delta * (double)r.s);
    double s_tot, t_tot;
    block_sum2(s, t, shd, &s_tot, &t_tot);
    const float d_y = to_f32(y < cached ? cache[y] : z[y]) - m;
    const float e_y = expf(d_y);
    const float others_sum = (float)s_tot;
    const float others_dot = (float)t_tot;
    const float sum = (float)(s_tot + (double)e_y);
    if (!(isfinite(m) && isfinite(d_y) && isfinite(sum) && isfinite(others_dot))) return false;
    // core's `ln_sum`: ln S = log1p(S') when the target is the row's maximum (e^(d_y) = 1, so
    // ell = -log1p(S') keeps S''s bits as pi_y -> 1), else ln S (then S' >= 1, |ell| >= ln 2).
    const float ln_s = d_y == 0.0f ? log1pf(others_sum) : logf(sum);
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
// The first `cached` elements are read from `cache` (shared memory), the rest from `z`; `out`
// may be `z` itself (in place): each pack is read and then written by the same thread, the
// one that read it for the statistics.
template <typename T>
__device__ void row_grad(const T* z, const T* cache, unsigned cached, T* out, unsigned V, unsigned y,
                         const RowStats& st, float w) {
    constexpr unsigned N = Pack<T>::N;
    const unsigned packs = (V + N - 1) / N;
    const bool aligned_z = aligned16(z), aligned_out = aligned16(out);
    const float scale = w / st.sum;
    const float g_y = -scale * st.others_sum;
    for (unsigned k0 = threadIdx.x; k0 < packs; k0 += BNF_UNROLL * BNF_THREADS) {
        uint4 u[BNF_UNROLL];
        BNF_PRAGMA_UNROLL
        for (unsigned i = 0; i < BNF_UNROLL; ++i) {
            const unsigned k = k0 + i * BNF_THREADS;
            if (k < packs) {
                const bool hit = k * N < cached;
                u[i] = load_pack<T>(hit ? cache : z, hit || aligned_z, hit, k, pack_len<T>(V, k));
            }
        }
        BNF_PRAGMA_UNROLL
        for (unsigned i = 0; i < BNF_UNROLL; ++i) {
            const unsigned k = k0 + i * BNF_THREADS;
            if (k < packs) {
                float g[N];
                BNF_PRAGMA_UNROLL
                for (unsigned e = 0; e < N; ++e) {
                    g[e] = k * N + e == y ? g_y : scale * exp_clamped(pack_elem<T>(u[i], e) - st.max);
                }
                store_pack<T>(out, aligned_out, false, k, pack_len<T>(V, k), pack_from_f32<T>(g));
            }
        }
    }
}

// A zero gradient row (masked rows).
template <typename T>
__device__ void zero_row(T* out, unsigned V) {
    const unsigned packs = (V + Pack<T>::N - 1) / Pack<T>::N;
    const bool aligned = aligned16(out);
    for (unsigned k = threadIdx.x; k < packs; k += BNF_THREADS) {
        store_pack<T>(out, aligned, false, k, pack_len<T>(V, k), make_uint4(0u, 0u, 0u, 0u));
    }
}
