// BNF's per-row scalars, mirroring core's `target.rs` and `math.rs`: `check_ref_logp`,
// `log1mexp`, `log_odds` and `bnf_scalars` (f_y, c in log space, the row cross-entropy), with
// the same edge cases.
#pragma once

#include "row.cuh"

// core's REF_LOGP_TOLERANCE.
#define BNF_REF_LOGP_TOLERANCE 1e-3f

// Core's `check_ref_logp`: false for NaN or rho > tolerance; otherwise rho clamped to <= 0.
__device__ __forceinline__ bool check_ref_logp(float rho, float* out) {
    if (isnan(rho) || rho > BNF_REF_LOGP_TOLERANCE) return false;
    *out = fminf(rho, 0.0f);
    return true;
}

// log(1 - e^x) for x <= 0 (Maechler's rule), as core's `math::log1mexp`.
__device__ __forceinline__ float log1mexp(float x) {
    return x > -0.693147180559945309f ? logf(-expm1f(x)) : log1pf(-expf(x));
}

// log(q / (1 - q)) from x = log q, as core's `math::log_odds`.
__device__ __forceinline__ float log_odds(float x) {
    if (x == -INFINITY) return -INFINITY;
    return x - log1mexp(x);
}

struct BnfScalars {
    float f_y;
    float c;
    float cross_entropy;
};

// Core's `bnf_scalars`: f_y = min(pi_y / pi_ref, 1), c = min(1, odds(pi_y) / odds(pi_ref)) and
// -(f_y ell + (1 - f_y)(T'/S' - lse)). `rho` must already be checked.
__device__ __forceinline__ BnfScalars bnf_scalars(const RowStats& st, float rho) {
    const float gap = st.ell - rho;
    const float log_f_y = gap < 0.0f ? gap : 0.0f;
    const float f_y = expf(log_f_y);
    const float one_minus_f_y = -expm1f(log_f_y);
    const float lo = log_odds_y(st);
    const float lo_ref = log_odds(rho);
    float c;
    if (lo == INFINITY || lo_ref == -INFINITY) {
        c = 1.0f;
    } else if (lo_ref == INFINITY) {
        c = 0.0f;
    } else {
        const float log_c = lo - lo_ref;
        c = expf(log_c < 0.0f ? log_c : 0.0f);
    }
    const float others = one_minus_f_y > 0.0f ? one_minus_f_y * others_mean_logp(st) : 0.0f;
    BnfScalars b;
    b.f_y = f_y;
    b.c = c;
    b.cross_entropy = -(f_y * st.ell + others);
    return b;
}
