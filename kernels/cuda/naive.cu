// The kernels of `naive.ptx`: a deliberately unfused BNF that mirrors the paper's appendix code
// step by step (materialised log-softmax, gather, exp and products, then autograd's backward
// through log_softmax), used only as the benchmark's baseline. It allocates two f32
// rows x vocab intermediates (logp, dlogp). Not a reference for correctness: core is.
// One block per row for the row-wide kernels, one thread per row for the scalar ones.

#include "common.cuh"

// logp = z - logsumexp(z)  (policy_logp = logits.log_softmax(-1))
template <typename T>
__device__ void log_softmax(const T* logits, float* logp, unsigned vocab) {
    __shared__ float shf[BNF_THREADS];
    __shared__ double shd[2 * BNF_THREADS];
    const long long r = blockIdx.x;
    const T* z = logits + r * vocab;
    float m = -INFINITY;
    for (unsigned j = threadIdx.x; j < vocab; j += BNF_THREADS) m = fmaxf(m, to_f32(z[j]));
    m = block_max(m, shf);
    float s = 0.0f;
    for (unsigned j = threadIdx.x; j < vocab; j += BNF_THREADS) s += expf(to_f32(z[j]) - m);
    double tot, unused;
    block_sum2((double)s, 0.0, shd, &tot, &unused);
    const float lse = m + logf((float)tot);
    for (unsigned j = threadIdx.x; j < vocab; j += BNF_THREADS) logp[r * vocab + j] = to_f32(z[j]) - lse;
}

// response_logp = gather(policy_logp, targets)
__device__ void gather(const float* logp, const unsigned* targets, unsigned vocab, unsigned rows, float* ell) {
    const unsigned r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r < rows) ell[r] = logp[(long long)r * vocab + targets[r]];
}

// other_logp_sum = (logp.exp() * logp).sum(-1) - ell.exp() * ell
__device__ void other_sum(const float* logp, const float* ell, unsigned vocab, float* other) {
    __shared__ double shd[2 * BNF_THREADS];
    const long long r = blockIdx.x;
    float s = 0.0f;
    for (unsigned j = threadIdx.x; j < vocab; j += BNF_THREADS) {
        const float l = logp[r * vocab + j];
        s += expf(l) * l;
    }
    double tot, unused;
    block_sum2((double)s, 0.0, shd, &tot, &unused);
    if (threadIdx.x == 0) other[r] = (float)tot - expf(ell[r]) * ell[r];
}

// responses_target = clamp(exp(ell) / exp(rho), max=1); others_target = (1 - it) / (1 - exp(ell));
// loss term = -s * (responses_target * ell + others_target * other_logp_sum)
__device__ void scalars(const float* ell, const float* ref_logp, const float* weights, const float* other,
                        unsigned rows, float* resp_t, float* others_t, float* loss) {
    const unsigned r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float p = expf(ell[r]);
    const float ft = fminf(p / expf(ref_logp[r]), 1.0f);
    const float ot = (1.0f - ft) / (1.0f - p);
    resp_t[r] = ft;
    others_t[r] = ot;
    loss[r] = -weights[r] * (ft * ell[r] + ot * other[r]);
}

// dloss/dlogp (targets detached): -(s / n) * (k == y ? responses_target : others_target * exp(logp_k))
__device__ void dlogp(const float* logp, const unsigned* targets, const float* weights, const float* resp_t,
                      const float* others_t, unsigned vocab, float num_responses, float* g) {
    const long long r = blockIdx.x;
    const float k = -weights[r] / num_responses;
    const unsigned y = targets[r];
    for (unsigned j = threadIdx.x; j < vocab; j += BNF_THREADS) {
        const long long i = r * vocab + j;
        g[i] = k * (j == y ? resp_t[r] : others_t[r] * expf(logp[i]));
    }
}

// log_softmax backward: dz = g - exp(logp) * sum(g)
template <typename T>
__device__ void log_softmax_bwd(const float* logp, const float* g, unsigned vocab, T* grad) {
    __shared__ double shd[2 * BNF_THREADS];
    const long long r = blockIdx.x;
    float s = 0.0f;
    for (unsigned j = threadIdx.x; j < vocab; j += BNF_THREADS) s += g[r * vocab + j];
    double tot, unused;
    block_sum2((double)s, 0.0, shd, &tot, &unused);
    const float gs = (float)tot;
    for (unsigned j = threadIdx.x; j < vocab; j += BNF_THREADS) {
        const long long i = r * vocab + j;
        grad[i] = from_f32<T>(g[i] - expf(logp[i]) * gs);
    }
}

extern "C" __global__ void __launch_bounds__(BNF_THREADS) naive_gather(const float* logp, const unsigned* targets,
                                                                        unsigned vocab, unsigned rows, float* ell) {
    gather(logp, targets, vocab, rows, ell);
}
extern "C" __global__ void __launch_bounds__(BNF_THREADS) naive_other_sum(const float* logp, const float* ell,
                                                                           unsigned vocab, float* other) {
    other_sum(logp, ell, vocab, other);
}
extern "C" __global__ void __launch_bounds__(BNF_THREADS) naive_scalars(const float* ell, const float* ref_logp,
                                                                         const float* weights, const float* other,
                                                                         unsigned rows, float* resp_t,
                                                                         float* others_t, float* loss) {
    scalars(ell, ref_logp, weights, other, rows, resp_t, others_t, loss);
}
extern "C" __global__ void __launch_bounds__(BNF_THREADS) naive_dlogp(const float* logp, const unsigned* targets,
                                                                       const float* weights, const float* resp_t,
                                                                       const float* others_t, unsigned vocab,
                                                                       float num_responses, float* g) {
    dlogp(logp, targets, weights, resp_t, others_t, vocab, num_responses, g);
}

#define NAIVE_INSTANTIATE(T, SUFFIX)                                                                         \
    extern "C" __global__ void __launch_bounds__(BNF_THREADS) naive_log_softmax_##SUFFIX(                    \
        const T* logits, float* logp, unsigned vocab) {                                                      \
        log_softmax<T>(logits, logp, vocab);                                                                 \
    }                                                                                                        \
    extern "C" __global__ void __launch_bounds__(BNF_THREADS) naive_log_softmax_bwd_##SUFFIX(                \
        const float* logp, const float* g, unsigned vocab, T* grad) {                                        \
        log_softmax_bwd<T>(logp, g, vocab, grad);                                                            \
    }

NAIVE_INSTANTIATE(float, f32)
NAIVE_INSTANTIATE(__half, f16)
NAIVE_INSTANTIATE(__nv_bfloat16, bf16)
