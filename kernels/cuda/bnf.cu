// The kernels of `bnf.ptx`: row_stats, row_grad, bnf_fwd_bwd (fused) and gather_logp, each for
// f32, f16 and bf16 logits (suffixes _f32, _f16, _bf16). One block of BNF_THREADS threads per
// row (grid = rows). Every kernel writes a status per row (0 fine, see common.cuh) and leaves
// a failed row's gradient untouched.
//
// Device memory traffic per logit: row_stats and gather_logp read it once; row_grad reads it
// once and writes the gradient once; bnf_fwd_bwd reads it once for the statistics and, for the
// part of the row that did not fit in its dynamic shared memory, once more for the gradient,
// and writes the gradient once. Only bnf_fwd_bwd uses dynamic shared memory: with `cached` = 1
// it keeps as much of the row as the launch gave it (`%dynamic_smem_size`, up to the device's
// opt-in limit; the driver opts in), so a row that fits is read from device memory once. The
// other kernels take `cached` for a uniform signature and ignore it.

#include "target.cuh"

BNF_DYNAMIC_SHARED(bnf_row_cache);

// How many leading elements of a row of V fit in the launch's dynamic shared memory: all of
// them, or a whole number of packs (0 when `cached` is 0).
template <typename T>
__device__ __forceinline__ unsigned row_cache_len(int cached, unsigned V) {
    if (!cached) return 0;
    const unsigned packs = bnf_dynamic_shared_bytes() / 16u;
    const unsigned fit = packs * Pack<T>::N;
    return fit < V ? fit : V;
}

// Per row, 6 floats in core's `RowStats` order; masked rows get zeros. One read of the row.
template <typename T>
__device__ void row_stats_kernel(const T* logits, const unsigned* targets, const unsigned char* scored,
                                 unsigned vocab, int cached, float* stats, int* status) {
    (void)cached;
    __shared__ float shf[BNF_THREADS];
    __shared__ double shd[2 * BNF_THREADS];
    const long long r = blockIdx.x;
    float* out = stats + 6 * r;
    int code = BNF_OK;
    RowStats st = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    if (is_scored(scored, r)) {
        const unsigned y = targets[r];
        if (y >= vocab) {
            code = BNF_TARGET_OUT_OF_RANGE;
        } else if (!row_stats(logits + r * vocab, vocab, y, (T*)nullptr, 0u, &st, shf, shd)) {
            code = BNF_NON_FINITE_LOGITS;
        }
    }
    if (threadIdx.x == 0) {
        out[0] = st.max;
        out[1] = st.lse;
        out[2] = st.ell;
        out[3] = st.sum;
        out[4] = st.others_sum;
        out[5] = st.others_dot;
        status[r] = code;
    }
}

// `out` row r = w[r] * (softmax - onehot) from the stats `row_stats` wrote; masked rows get
// zeros. `out` may equal `logits`. `status` (may be null) gets core's `row_grad` errors
// (`check_grad_inputs`); a failed row is left untouched. One read of the row, one write.
template <typename T>
__device__ void row_grad_kernel(const T* logits, T* out, const unsigned* targets, const unsigned char* scored,
                                const float* stats, const float* w, unsigned vocab, int cached, int* status) {
    (void)cached;
    const long long r = blockIdx.x;
    T* o = out + r * vocab;
    if (!is_scored(scored, r)) {
        zero_row(o, vocab);
        if (status != nullptr && threadIdx.x == 0) status[r] = BNF_OK;
        return;
    }
    const unsigned y = targets[r];
    const float* s = stats + 6 * r;
    const RowStats st = {s[0], s[1], s[2], s[3], s[4], s[5]};
    const float wr = w[r];
    const int code = check_grad_inputs(vocab, y, st, wr);
    if (status != nullptr && threadIdx.x == 0) status[r] = code;
    if (code != BNF_OK) return;
    row_grad(logits + r * vocab, (const T*)nullptr, 0u, o, vocab, y, st, wr);
}

// BNF forward and backward fused, one block per row: statistics, core's `bnf_scalars`, the
// row's loss term s * CE, then the gradient (s c / n)(softmax - onehot) into `grad` (may equal
// `logits`: in place; may be null: loss only). `ref_logp` null runs NLL (f_y = 1, c = 1,
// CE = -ell). Per row, 5 floats in `out`: loss term, pi_y, f_y, c, lse (zeros when masked or
// failed). The batch loss is the sum of loss terms over rows divided by num_responses, taken
// on the host in row order.
template <typename T>
__device__ void bnf_fwd_bwd_kernel(const T* logits, T* grad, const unsigned* targets, const float* weights,
                                   const float* ref_logp, const unsigned char* scored, unsigned vocab,
                                   float num_responses, int cached, float* out, int* status) {
    __shared__ float shf[BNF_THREADS];
    __shared__ double shd[2 * BNF_THREADS];
    const long long r = blockIdx.x;
    float* o = out + 5 * r;
    const bool write_grad = grad != nullptr;
    if (!is_scored(scored, r)) {
        if (write_grad) zero_row(grad + r * vocab, vocab);
        if (threadIdx.x == 0) {
            o[0] = o[1] = o[2] = o[3] = o[4] = 0.0f;
            status[r] = BNF_OK;
        }
        return;
    }
    const unsigned y = targets[r];
    const float s = weights[r];
    const T* z = logits + r * vocab;
    T* cache = reinterpret_cast<T*>(bnf_row_cache);
    // Only a gradient pass reads the copy.
    const unsigned cache_len = write_grad && y < vocab ? row_cache_len<T>(cached, vocab) : 0u;
    int code = BNF_OK;
    RowStats st = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    float rho = -INFINITY;
    if (y >= vocab) {
        code = BNF_TARGET_OUT_OF_RANGE;
    } else if (!isfinite(s)) {
        code = BNF_INVALID_WEIGHT;
    } else if (!row_stats(z, vocab, y, cache, cache_len, &st, shf, shd)) {
        code = BNF_NON_FINITE_LOGITS;
    } else if (ref_logp != nullptr && !check_ref_logp(ref_logp[r], &rho)) {
        code = BNF_INVALID_REF_LOGP;
    }
    if (code != BNF_OK) {
        if (threadIdx.x == 0) {
            o[0] = o[1] = o[2] = o[3] = o[4] = 0.0f;
            status[r] = code;
        }
        return;
    }
    BnfScalars b;
    if (ref_logp != nullptr) {
        b = bnf_scalars(st, rho);
    } else {
        b.f_y = 1.0f;
        b.c = 1.0f;
        b.cross_entropy = -st.ell;
    }
    if (threadIdx.x == 0) {
        o[0] = s * b.cross_entropy;
        o[1] = expf(st.ell);
        o[2] = b.f_y;
        o[3] = b.c;
        o[4] = st.lse;
        status[r] = BNF_OK;
    }
    // Every thread has read z[y] (in row_stats) before any thread overwrites it in place.
    __syncthreads();
    if (write_grad) row_grad(z, cache, cache_len, grad + r * vocab, vocab, y, st, s * b.c / num_responses);
}

// ell = log pi_y and lse per row (reference log-probs, sequence-level losses); masked rows
// get zeros. `lse` may be null. One read of the row.
template <typename T>
__device__ void gather_logp_kernel(const T* logits, const unsigned* targets, const unsigned char* scored,
                                   unsigned vocab, int cached, float* logp, float* lse, int* status) {
    (void)cached;
    __shared__ float shf[BNF_THREADS];
    __shared__ double shd[2 * BNF_THREADS];
    const long long r = blockIdx.x;
    int code = BNF_OK;
    RowStats st = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    if (is_scored(scored, r)) {
        const unsigned y = targets[r];
        if (y >= vocab) {
            code = BNF_TARGET_OUT_OF_RANGE;
        } else if (!row_stats(logits + r * vocab, vocab, y, (T*)nullptr, 0u, &st, shf, shd)) {
            code = BNF_NON_FINITE_LOGITS;
        }
    }
    if (threadIdx.x == 0) {
        logp[r] = st.ell;
        if (lse != nullptr) lse[r] = st.lse;
        status[r] = code;
    }
}

#define BNF_INSTANTIATE(T, SUFFIX)                                                                              \
    extern "C" __global__ void __launch_bounds__(BNF_THREADS) row_stats_##SUFFIX(                               \
        const T* logits, const unsigned* targets, const unsigned char* scored, unsigned vocab, int cached,      \
        float* stats, int* status) {                                                                            \
        row_stats_kernel<T>(logits, targets, scored, vocab, cached, stats, status);                             \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(BNF_THREADS) row_grad_##SUFFIX(                                \
        const T* logits, T* out, const unsigned* targets, const unsigned char* scored, const float* stats,     \
        const float* w, unsigned vocab, int cached, int* status) {                                              \
        row_grad_kernel<T>(logits, out, targets, scored, stats, w, vocab, cached, status);                      \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(BNF_THREADS) bnf_fwd_bwd_##SUFFIX(                             \
        const T* logits, T* grad, const unsigned* targets, const float* weights, const float* ref_logp,        \
        const unsigned char* scored, unsigned vocab, float num_responses, int cached, float* out,              \
        int* status) {                                                                                          \
        bnf_fwd_bwd_kernel<T>(logits, grad, targets, weights, ref_logp, scored, vocab, num_responses, cached,  \
                              out, status);                                                                     \
    }                                                                                                           \
    extern "C" __global__ void __launch_bounds__(BNF_THREADS) gather_logp_##SUFFIX(                             \
        const T* logits, const unsigned* targets, const unsigned char* scored, unsigned vocab, int cached,      \
        float* logp, float* lse, int* status) {                                                                 \
        gather_logp_kernel<T>(logits, targets, scored, vocab, cached, logp, lse, status);                       \
    }

BNF_INSTANTIATE(float, f32)
BNF_INSTANTIATE(__half, f16)
BNF_INSTANTIATE(__nv_bfloat16, bf16)
