/* demo.c: BNF through libbnf's C ABI on a small built-in batch, checked against an independent
 * double-precision computation written straight from the paper (eq. 6 for f, eq. 4 for the
 * loss, eq. 8 for the gradient), plus the error path for a bad target id, DPO through the
 * objective entries, and the GPU entries'
 * answer when there is no GPU (libbnf built without `cuda`, or no CUDA driver/device).
 *
 * Build (from the repository root, after `cargo build --release -p bnf-capi`):
 *   gcc -std=c11 -Wall -Wextra -Werror -I capi/include capi/examples/c/demo.c \
 *       target/release/libbnf.a -lpthread -ldl -lm -o demo && ./demo
 * Exit status 0 when every check passes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bnf.h"

#define VOCAB 8
#define ROWS 6

static int failures = 0;

static void check(int ok, const char *what) {
    printf("%s  %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

/* Round a float to the nearest bfloat16 (ties to even); finite inputs only. */
static uint16_t to_bf16(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* The paper's loss and gradient for one row, in double, materialising f (eq. 6):
 * loss = -s sum_j f_j log pi_j, grad_j = s (pi_j - f_j), with f frozen. */
static double reference_row(const float *z, uint32_t y, double rho, double s, double *grad) {
    double m = z[0], sum = 0.0, logp[VOCAB], pi[VOCAB], f[VOCAB];
    for (int j = 1; j < VOCAB; j++) m = z[j] > m ? z[j] : m;
    for (int j = 0; j < VOCAB; j++) sum += exp(z[j] - m);
    for (int j = 0; j < VOCAB; j++) {
        logp[j] = z[j] - m - log(sum);
        pi[j] = exp(logp[j]);
    }
    double f_y = fmin(pi[y] / exp(rho), 1.0), loss = 0.0;
    for (int j = 0; j < VOCAB; j++) {
        f[j] = j == (int)y ? f_y : (1.0 - f_y) * pi[j] / (1.0 - pi[y]);
        loss -= s * f[j] * logp[j];
        grad[j] = s * (pi[j] - f[j]);
    }
    return loss;
}

int main(void) {
    /* Row 0 is a prompt row (masked); rows 1-3 are a preferred response, rows 4-5 a
     * dispreferred one. */
    float logits[ROWS * VOCAB];
    for (int i = 0; i < ROWS * VOCAB; i++) logits[i] = (float)((i * 37) % 17) * 0.4f - 3.0f;
    uint32_t targets[ROWS] = {0, 3, 1, 7, 2, 5};
    uint8_t scored[ROWS] = {0, 1, 1, 1, 1, 1};
    float ref_logp[ROWS] = {0.0f, -1.5f, -0.3f, -4.0f, -2.0f, -0.7f};
    size_t offsets[3] = {0, 4, 6};
    float labels[2] = {BNF_PREFERRED, BNF_DISPREFERRED};
    float weights[ROWS];

    printf("libbnf %s\n", bnf_version());
    BnfStatus st = bnf_response_weights(offsets, labels, 2, scored, ROWS, weights);
    check(st == BNF_OK, "bnf_response_weights returns BNF_OK");
    check(weights[0] == 0.0f && fabsf(weights[1] - 1.0f / 3.0f) < 1e-7f &&
              fabsf(weights[4] + 0.5f) < 1e-7f,
          "weights are label / |y| per response, 0 on the prompt row");

    BnfBatch batch = {
        .vocab = VOCAB, .rows = ROWS, .targets = targets, .weights = weights,
        .scored = scored, .num_responses = 2, .ref_logp = ref_logp,
    };
    float grad[ROWS * VOCAB], loss = NAN;
    BnfRowDiag diag[ROWS];
    st = bnf_forward_backward_f32(logits, &batch, grad, diag, &loss);
    check(st == BNF_OK, "bnf_forward_backward_f32 returns BNF_OK");
    printf("      loss = %.7f\n", loss);

    /* Independent computation. */
    double want_loss = 0.0, want_grad[ROWS * VOCAB] = {0}, max_err = 0.0, max_row_sum = 0.0;
    for (int r = 0; r < ROWS; r++) {
        if (!scored[r]) continue;
        want_loss += reference_row(&logits[r * VOCAB], targets[r], ref_logp[r], weights[r],
                                   &want_grad[r * VOCAB]);
    }
    want_loss /= 2.0;
    for (int i = 0; i < ROWS * VOCAB; i++) {
        double e = fabs(grad[i] - want_grad[i] / 2.0);
        max_err = e > max_err ? e : max_err;
    }
    for (int r = 0; r < ROWS; r++) {
        double s = 0.0;
        for (int j = 0; j < VOCAB; j++) s += grad[r * VOCAB + j];
        max_row_sum = fabs(s) > max_row_sum ? fabs(s) : max_row_sum;
    }
    printf("      independent loss = %.7f, max |grad - independent| = %.2e\n", want_loss,
           max_err);
    check(fabs(loss - want_loss) <= 1e-5 * fmax(1.0, fabs(want_loss)),
          "loss equals the paper's formula with f materialised (eq. 6, eq. 4)");
    check(max_err < 1e-6, "gradient equals s (pi - f) / n (eq. 8)");
    check(max_row_sum < 1e-6, "every gradient row sums to 0");
    int masked_zero = 1;
    for (int j = 0; j < VOCAB; j++) masked_zero &= grad[j] == 0.0f;
    check(masked_zero && diag[0].scored == 0 && diag[1].scored == 1,
          "masked prompt row: zero gradient, diag.scored = 0");
    for (int r = 1; r < ROWS; r++)
        printf("      row %d: pi_y %.4f  f_y %.4f  c %.4f  loss %.4f\n", r, diag[r].pi_y,
               diag[r].f_y, diag[r].c, diag[r].loss);

    /* In place: the same bits. */
    float z[ROWS * VOCAB], loss2 = NAN;
    memcpy(z, logits, sizeof z);
    st = bnf_forward_backward_in_place_f32(z, &batch, NULL, &loss2);
    check(st == BNF_OK && loss2 == loss && memcmp(z, grad, sizeof z) == 0,
          "in place gives the same loss and gradient bits");

    /* bf16 logits: the same maths on the rounded values. */
    uint16_t zb[ROWS * VOCAB], gb[ROWS * VOCAB];
    float zr[ROWS * VOCAB], loss_b = NAN;
    for (int i = 0; i < ROWS * VOCAB; i++) {
        zb[i] = to_bf16(logits[i]);
        zr[i] = from_bf16(zb[i]);
    }
    st = bnf_forward_backward_bf16(zb, &batch, gb, NULL, &loss_b);
    double want_b = 0.0, scratch[VOCAB];
    for (int r = 0; r < ROWS; r++)
        if (scored[r])
            want_b += reference_row(&zr[r * VOCAB], targets[r], ref_logp[r], weights[r], scratch);
    want_b /= 2.0;
    check(st == BNF_OK && fabs(loss_b - want_b) <= 1e-5 * fmax(1.0, fabs(want_b)),
          "bf16 logits: loss equals the formula on the bf16 values");

    /* Error path: an out-of-range target id on row 2. */
    targets[2] = 99;
    float untouched[ROWS * VOCAB];
    for (int i = 0; i < ROWS * VOCAB; i++) untouched[i] = 42.0f;
    st = bnf_forward_backward_f32(logits, &batch, untouched, NULL, &loss);
    const char *msg = bnf_last_error_message();
    printf("      error %d (%s): %s\n", (int)st, bnf_status_name((int32_t)st), msg);
    check(st == BNF_ERR_TARGET_OUT_OF_RANGE, "bad target id gives BNF_ERR_TARGET_OUT_OF_RANGE");
    check(strstr(msg, "row 2") != NULL && strstr(msg, "target id 99") != NULL,
          "the message names the row and the id");
    check(untouched[0] == 42.0f && untouched[ROWS * VOCAB - 1] == 42.0f,
          "nothing written on error");
    targets[2] = 1;

    st = bnf_forward_backward_f32(NULL, &batch, grad, NULL, &loss);
    check(st == BNF_ERR_NULL_POINTER && strstr(bnf_last_error_message(), "`logits`") != NULL,
          "NULL logits gives BNF_ERR_NULL_POINTER naming `logits`");

    /* A sequence-level baseline through the same ABI: DPO on the pair (response 0 chosen,
     * response 1 rejected), against -log sigmoid(beta ((lp_w - rp_w) - (lp_l - rp_l))) with
     * lp and rp summed over each response's scored rows, computed here in double. */
    BnfObjective dpo;
    st = bnf_objective_default("dpo", &dpo);
    check(st == BNF_OK && dpo.kind == BNF_OBJECTIVE_DPO, "bnf_objective_default(\"dpo\")");
    size_t pairs[2] = {0, 1};
    float lp[2] = {NAN, NAN};
    BnfPrefBatch pb = {
        .vocab = VOCAB, .rows = ROWS, .targets = targets, .scored = scored,
        .num_responses = 2, .offsets = offsets, .labels = labels,
        .num_pairs = 1, .pairs = pairs, .ref_logp = ref_logp,
    };
    BnfObjectiveOut out = {.response_logp = lp};
    st = bnf_objective_forward_backward_f32(logits, &pb, &dpo, grad, &out);
    double want_lp[2] = {0.0, 0.0}, want_rp[2] = {0.0, 0.0};
    for (int r = 0; r < ROWS; r++) {
        if (!scored[r]) continue;
        int i = r < 4 ? 0 : 1;
        double m = logits[r * VOCAB], sum = 0.0;
        for (int j = 1; j < VOCAB; j++) m = fmax(m, logits[r * VOCAB + j]);
        for (int j = 0; j < VOCAB; j++) sum += exp(logits[r * VOCAB + j] - m);
        want_lp[i] += logits[r * VOCAB + targets[r]] - m - log(sum);
        want_rp[i] += ref_logp[r];
    }
    double margin = dpo.beta * ((want_lp[0] - want_rp[0]) - (want_lp[1] - want_rp[1]));
    double want_dpo = log1p(exp(-margin));
    printf("      DPO loss = %.7f (independent %.7f)\n", out.loss, want_dpo);
    check(st == BNF_OK && fabs(out.loss - want_dpo) <= 1e-5 &&
              fabs(lp[0] - want_lp[0]) <= 1e-4 && fabs(lp[1] - want_lp[1]) <= 1e-4,
          "DPO loss and log pi(y) per response equal the formula");

    /* GPU entries: in every build; without CUDA they say so instead of crashing. */
    BnfCuda *gpu = NULL;
    st = bnf_cuda_open(0, &gpu);
    if (st == BNF_OK) {
        printf("      GPU found; the GPU entries are tested by capi/tests/cuda.rs\n");
        check(gpu != NULL && bnf_cuda_release(gpu) == BNF_OK,
              "bnf_cuda_open gives a handle, bnf_cuda_release frees it");
    } else {
        msg = bnf_last_error_message();
        printf("      no GPU here: %s (%s)\n", bnf_status_name((int32_t)st), msg);
        check(st == BNF_ERR_CUDA_UNAVAILABLE && gpu == NULL &&
                  strstr(msg, "no CUDA driver/device") != NULL,
              "without a GPU, bnf_cuda_open says BNF_ERR_CUDA_UNAVAILABLE: no CUDA driver/device");
    }

    printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
