//! The fuzz harness of issue 20 in a bounded form (a few thousand cases, seconds): every host
//! entry of the C ABI on small batches of extreme but mostly finite values (logits up to
//! `FLT_MAX`, weights, labels and objective parameters up to `3.4e38`, reference log-probs down
//! to `-FLT_MAX`), in f32, f16 and bf16. Whatever the inputs, each call must
//!
//! - return, never panic (`BNF_ERR_INTERNAL` is a caught panic);
//! - on error, leave every output as it was (sentinels, and the logits of in-place entries);
//! - on `BNF_OK`, have written only finite values (loss, diagnostics, gradient, arrays);
//!
//! and the errors must say what they are: finite logits are never `BNF_ERR_NON_FINITE_LOGITS`,
//! and the sequence-level objectives, which take no row weights, never report one.
//! `PROPTEST_CASES` changes the number of cases (default 3000).

mod common;

use bnf::*;
use bnf_core::{bf16, f16};
use common::last_error;
use proptest::prelude::*;

/// Logits: mostly extreme finite values, a few non-finite ones.
const LOGITS: &[f32] = &[
    0.0,
    1.0,
    -1.0,
    30.0,
    100.0,
    -60.063267,
    23.358229,
    1e4,
    -1e4,
    65504.0,
    1e20,
    -1e20,
    1e38,
    -1e38,
    3e38,
    -3e38,
    f32::MAX,
    -f32::MAX,
    f32::MIN_POSITIVE,
];
const NON_FINITE: &[f32] = &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
/// Row weights, labels, objective parameters and the row-gradient `w`.
const SCALES: &[f32] = &[
    0.0,
    1.0,
    -1.0,
    0.25,
    -0.5,
    65504.0,
    1e5,
    -1e5,
    1e20,
    1e30,
    -1e30,
    1e37,
    -1e37,
    3e38,
    -3.4e38,
    f32::MAX,
];
const REF_LOGP: &[f32] = &[
    0.0,
    -0.5,
    -1e-30,
    -30.0,
    -1e20,
    -3e38,
    -f32::MAX,
    f32::NEG_INFINITY,
    1e-4,
];

fn pick(pool: &'static [f32]) -> impl Strategy<Value = f32> {
    (0..pool.len()).prop_map(move |i| pool[i])
}

fn logit() -> impl Strategy<Value = f32> {
    prop_oneof![20 => pick(LOGITS), 1 => pick(NON_FINITE)]
}

/// One batch, described for every entry.
#[derive(Clone, Debug)]
struct Case {
    /// 0: f32, 1: f16, 2: bf16.
    dtype: u8,
    vocab: usize,
    logits: Vec<f32>,
    targets: Vec<u32>,
    scored: Vec<u8>,
    weights: Vec<f32>,
    ref_logp: Vec<f32>,
    /// Response `i` owns rows `offsets[i]..offsets[i + 1]`.
    offsets: Vec<usize>,
    /// Label magnitude (alternating signs: responses 0, 2, ... preferred).
    label: f32,
    /// The objective's parameters (each one it uses).
    param: f32,
    /// The row gradient's weight.
    w: f32,
}

fn case() -> impl Strategy<Value = Case> {
    (0u8..3, 1usize..5, 1usize..5).prop_flat_map(|(dtype, vocab, rows)| {
        (
            prop::collection::vec(logit(), rows * vocab),
            // A target id of `vocab` now and then: out of range.
            prop::collection::vec(
                prop_oneof![12 => 0..vocab as u32, 1 => Just(vocab as u32)],
                rows,
            ),
            prop::collection::vec(prop_oneof![5 => Just(1u8), 1 => Just(0u8)], rows),
            prop::collection::vec(pick(SCALES), rows),
            prop::collection::vec(pick(REF_LOGP), rows),
            prop::collection::vec(any::<bool>(), rows - 1),
            (pick(SCALES), pick(SCALES), pick(SCALES)),
        )
            .prop_map(
                move |(logits, targets, scored, weights, ref_logp, cuts, (l, p, w))| {
                    let mut offsets = vec![0];
                    offsets.extend((1..rows).filter(|&r| cuts[r - 1]));
                    offsets.push(rows);
                    Case {
                        dtype,
                        vocab,
                        logits,
                        targets,
                        scored,
                        weights,
                        ref_logp,
                        offsets,
                        label: if l == 0.0 { 1.0 } else { l.abs() },
                        param: p.abs().max(1.0),
                        w,
                    }
                },
            )
    })
}

/// A storage type of the ABI: `float`, or a half type as `uint16_t` bits.
trait Elem: Copy + PartialEq + std::fmt::Debug {
    fn enc(v: f32, dtype: u8) -> Self;
    fn dec(self, dtype: u8) -> f32;
    /// A value no entry writes by accident.
    fn sentinel() -> Self;
}

impl Elem for f32 {
    fn enc(v: f32, _: u8) -> Self {
        v
    }
    fn dec(self, _: u8) -> f32 {
        self
    }
    fn sentinel() -> Self {
        12345.678
    }
}

impl Elem for u16 {
    fn enc(v: f32, dtype: u8) -> Self {
        match dtype {
            1 => f16::from_f32(v).to_bits(),
            _ => bf16::from_f32(v).to_bits(),
        }
    }
    fn dec(self, dtype: u8) -> f32 {
        match dtype {
            1 => f16::from_bits(self).to_f32(),
            _ => bf16::from_bits(self).to_f32(),
        }
    }
    fn sentinel() -> Self {
        0x5A5A
    }
}

type Fwd<E> =
    unsafe extern "C" fn(*const E, *const BnfBatch, *mut BnfRowDiag, *mut f32) -> BnfStatus;
type Fb<E> =
    unsafe extern "C" fn(*const E, *const BnfBatch, *mut E, *mut BnfRowDiag, *mut f32) -> BnfStatus;
type Ip<E> = unsafe extern "C" fn(*mut E, *const BnfBatch, *mut BnfRowDiag, *mut f32) -> BnfStatus;
type OFwd<E> = unsafe extern "C" fn(
    *const E,
    *const BnfPrefBatch,
    *const BnfObjective,
    *mut BnfObjectiveOut,
) -> BnfStatus;
type OFb<E> = unsafe extern "C" fn(
    *const E,
    *const BnfPrefBatch,
    *const BnfObjective,
    *mut E,
    *mut BnfObjectiveOut,
) -> BnfStatus;
type OIp<E> = unsafe extern "C" fn(
    *mut E,
    *const BnfPrefBatch,
    *const BnfObjective,
    *mut BnfObjectiveOut,
) -> BnfStatus;
type Stats<E> = unsafe extern "C" fn(*const E, usize, u32, *mut BnfRowStats) -> BnfStatus;
type Grad<E> =
    unsafe extern "C" fn(*const E, usize, u32, *const BnfRowStats, f32, *mut E) -> BnfStatus;
type GradIp<E> = unsafe extern "C" fn(*mut E, usize, u32, *const BnfRowStats, f32) -> BnfStatus;
type Target<E> =
    unsafe extern "C" fn(*const E, usize, u32, f32, *mut f32, *mut BnfRowStats) -> BnfStatus;

/// One objective's batch entries: its name, loss only, into a buffer, in place.
type BatchEntries<E> = (&'static str, Fwd<E>, Fb<E>, Ip<E>);

/// The entries of one dtype.
struct Api<E> {
    batch: [BatchEntries<E>; 2],
    objective: (OFwd<E>, OFb<E>, OIp<E>),
    stats: Stats<E>,
    grad: Grad<E>,
    grad_in_place: GradIp<E>,
    target: Target<E>,
}

const F32: Api<f32> = Api {
    batch: [
        (
            "bnf",
            bnf_forward_f32,
            bnf_forward_backward_f32,
            bnf_forward_backward_in_place_f32,
        ),
        (
            "nll",
            bnf_nll_forward_f32,
            bnf_nll_forward_backward_f32,
            bnf_nll_forward_backward_in_place_f32,
        ),
    ],
    objective: (
        bnf_objective_forward_f32,
        bnf_objective_forward_backward_f32,
        bnf_objective_forward_backward_in_place_f32,
    ),
    stats: bnf_row_stats_f32,
    grad: bnf_row_grad_f32,
    grad_in_place: bnf_row_grad_in_place_f32,
    target: bnf_dynamic_target_f32,
};

const F16: Api<u16> = Api {
    batch: [
        (
            "bnf",
            bnf_forward_f16,
            bnf_forward_backward_f16,
            bnf_forward_backward_in_place_f16,
        ),
        (
            "nll",
            bnf_nll_forward_f16,
            bnf_nll_forward_backward_f16,
            bnf_nll_forward_backward_in_place_f16,
        ),
    ],
    objective: (
        bnf_objective_forward_f16,
        bnf_objective_forward_backward_f16,
        bnf_objective_forward_backward_in_place_f16,
    ),
    stats: bnf_row_stats_f16,
    grad: bnf_row_grad_f16,
    grad_in_place: bnf_row_grad_in_place_f16,
    target: bnf_dynamic_target_f16,
};

const BF16: Api<u16> = Api {
    batch: [
        (
            "bnf",
            bnf_forward_bf16,
            bnf_forward_backward_bf16,
            bnf_forward_backward_in_place_bf16,
        ),
        (
            "nll",
            bnf_nll_forward_bf16,
            bnf_nll_forward_backward_bf16,
            bnf_nll_forward_backward_in_place_bf16,
        ),
    ],
    objective: (
        bnf_objective_forward_bf16,
        bnf_objective_forward_backward_bf16,
        bnf_objective_forward_backward_in_place_bf16,
    ),
    stats: bnf_row_stats_bf16,
    grad: bnf_row_grad_bf16,
    grad_in_place: bnf_row_grad_in_place_bf16,
    target: bnf_dynamic_target_bf16,
};

const DIAG_SENTINEL: BnfRowDiag = BnfRowDiag {
    scored: 7,
    pi_y: 777.0,
    ell: 777.0,
    f_y: 777.0,
    c: 777.0,
    loss: 777.0,
    lse: 777.0,
};
const LOSS_SENTINEL: f32 = 4242.0;
const OUT_SENTINEL: f32 = 999.5;

/// What one call did, for the checks common to every entry.
struct Call<'a> {
    entry: String,
    status: BnfStatus,
    /// Whether every logit the call read is finite.
    finite_logits: bool,
    /// Whether the entry takes no row weights (the sequence-level objectives).
    weightless: bool,
    /// Every output's values, as `(name, before, after)`, compared bitwise on error.
    outputs: Vec<(&'a str, Vec<f32>, Vec<f32>)>,
    /// Outputs whose values must be finite on success (subsets of `outputs`' `after`).
    must_be_finite: Vec<(&'a str, Vec<f32>)>,
}

impl Call<'_> {
    fn check(self) -> Result<(), TestCaseError> {
        let msg = last_error();
        let name = &self.entry;
        prop_assert!(
            self.status != BnfStatus::BNF_ERR_INTERNAL,
            "{name}: internal error (a panic?): {msg}"
        );
        if self.status == BnfStatus::BNF_OK {
            for (what, values) in &self.must_be_finite {
                prop_assert!(
                    values.iter().all(|v| v.is_finite()),
                    "{name}: BNF_OK with non-finite {what}: {values:?}"
                );
            }
            return Ok(());
        }
        prop_assert!(
            !msg.is_empty(),
            "{name}: {:?} without a message",
            self.status
        );
        prop_assert!(msg.starts_with(name.as_str()), "{name}: message {msg:?}");
        for (what, before, after) in &self.outputs {
            let same = before.len() == after.len()
                && before
                    .iter()
                    .zip(after)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            prop_assert!(
                same,
                "{name}: {what} written on error {:?} ({msg})",
                self.status
            );
        }
        if self.finite_logits {
            prop_assert!(
                self.status != BnfStatus::BNF_ERR_NON_FINITE_LOGITS,
                "{name}: finite logits called non-finite: {msg}"
            );
        }
        if self.weightless {
            prop_assert!(
                self.status != BnfStatus::BNF_ERR_INVALID_WEIGHT && !msg.contains("weight "),
                "{name}: names a weight it does not take: {msg}"
            );
        }
        if self.status == BnfStatus::BNF_ERR_OVERFLOW {
            prop_assert!(msg.contains("overflows"), "{name}: {msg}");
        }
        Ok(())
    }
}

fn diag_values(d: &[BnfRowDiag]) -> Vec<f32> {
    d.iter()
        .flat_map(|d| [d.scored as f32, d.pi_y, d.ell, d.f_y, d.c, d.loss, d.lse])
        .collect()
}

fn stats_values(s: &BnfRowStats) -> Vec<f32> {
    vec![s.max, s.lse, s.ell, s.sum, s.others_sum, s.others_dot]
}

fn dec<E: Elem>(v: &[E], dtype: u8) -> Vec<f32> {
    v.iter().map(|e| e.dec(dtype)).collect()
}

/// The BNF and NLL batch entries: loss only, into a buffer, in place.
fn batch_entries<E: Elem>(api: &Api<E>, k: &Case) -> Result<(), TestCaseError> {
    let dt = k.dtype;
    let logits: Vec<E> = k.logits.iter().map(|&v| E::enc(v, dt)).collect();
    let rows = k.targets.len();
    let finite = logits.iter().all(|v| v.dec(dt).is_finite());
    let b = BnfBatch {
        vocab: k.vocab,
        rows,
        targets: k.targets.as_ptr(),
        weights: k.weights.as_ptr(),
        scored: k.scored.as_ptr(),
        num_responses: k.offsets.len() - 1,
        ref_logp: k.ref_logp.as_ptr(),
    };
    for &(name, fwd, fb, ip) in &api.batch {
        for mode in 0..3 {
            let mut diag = vec![DIAG_SENTINEL; rows];
            let mut loss = LOSS_SENTINEL;
            let mut grad = vec![E::sentinel(); logits.len()];
            let mut z = logits.clone();
            let status = unsafe {
                match mode {
                    0 => fwd(logits.as_ptr(), &b, diag.as_mut_ptr(), &mut loss),
                    1 => fb(
                        logits.as_ptr(),
                        &b,
                        grad.as_mut_ptr(),
                        diag.as_mut_ptr(),
                        &mut loss,
                    ),
                    _ => ip(z.as_mut_ptr(), &b, diag.as_mut_ptr(), &mut loss),
                }
            };
            let d = diag_values(&diag);
            let mut outputs = vec![
                ("loss", vec![LOSS_SENTINEL], vec![loss]),
                ("diag", diag_values(&vec![DIAG_SENTINEL; rows]), d.clone()),
            ];
            let mut must_be_finite = vec![("loss", vec![loss]), ("diag", d)];
            match mode {
                1 => {
                    let g = dec(&grad, dt);
                    outputs.push(("grad", dec(&vec![E::sentinel(); grad.len()], dt), g.clone()));
                    must_be_finite.push(("grad", g));
                }
                2 => {
                    let g = dec(&z, dt);
                    outputs.push(("logits (in place)", dec(&logits, dt), g.clone()));
                    must_be_finite.push(("grad (in place)", g));
                }
                _ => {}
            }
            Call {
                entry: format!("bnf_{}forward", if name == "nll" { "nll_" } else { "" }),
                status,
                finite_logits: finite,
                weightless: false,
                outputs,
                must_be_finite,
            }
            .check()?;
        }
    }
    Ok(())
}

/// Every objective through `bnf_objective_*`, loss only, into a buffer and in place.
fn objective_entries<E: Elem>(api: &Api<E>, k: &Case) -> Result<(), TestCaseError> {
    let dt = k.dtype;
    let logits: Vec<E> = k.logits.iter().map(|&v| E::enc(v, dt)).collect();
    let finite = logits.iter().all(|v| v.dec(dt).is_finite());
    let rows = k.targets.len();
    let n = k.offsets.len() - 1;
    let labels: Vec<f32> = (0..n)
        .map(|i| if i % 2 == 0 { k.label } else { -k.label })
        .collect();
    // Every response in a pair: (0, 1), (2, 3), ..., and an odd last one chosen against 1.
    let mut pairs: Vec<usize> = (0..n / 2).flat_map(|p| [2 * p, 2 * p + 1]).collect();
    if n % 2 == 1 && n > 1 {
        pairs.extend([n - 1, 1]);
    }
    let b = BnfPrefBatch {
        vocab: k.vocab,
        rows,
        targets: k.targets.as_ptr(),
        scored: k.scored.as_ptr(),
        num_responses: n,
        offsets: k.offsets.as_ptr(),
        labels: labels.as_ptr(),
        num_pairs: pairs.len() / 2,
        pairs: if pairs.is_empty() {
            std::ptr::null()
        } else {
            pairs.as_ptr()
        },
        ref_logp: k.ref_logp.as_ptr(),
    };
    for kind in 0..=BNF_OBJECTIVE_KTO {
        let mut obj = BnfObjective::default();
        let name = bnf_core::OBJECTIVE_NAMES[kind as usize];
        let c_name = std::ffi::CString::new(name).unwrap();
        assert_eq!(
            unsafe { bnf_objective_default(c_name.as_ptr(), &mut obj) },
            BnfStatus::BNF_OK
        );
        // Every parameter the objective takes, at the case's (in-domain) extreme.
        obj.beta = k.param;
        obj.lambda = k.param;
        obj.margin = k.param;
        obj.gamma = k.param;
        obj.alpha = k.param;
        obj.tau = k.param;
        obj.desirable_weight = k.param;
        obj.undesirable_weight = k.param;
        let weightless = kind != BNF_OBJECTIVE_BNF && kind != BNF_OBJECTIVE_NLL;
        for mode in 0..3 {
            let mut resp_logp = vec![OUT_SENTINEL; n];
            let mut dlogp = vec![OUT_SENTINEL; n];
            let mut row_weight = vec![OUT_SENTINEL; rows];
            let mut out = BnfObjectiveOut {
                loss: LOSS_SENTINEL,
                kl_estimate: LOSS_SENTINEL,
                response_logp: resp_logp.as_mut_ptr(),
                dloss_dlogp: dlogp.as_mut_ptr(),
                row_weight: row_weight.as_mut_ptr(),
            };
            let mut grad = vec![E::sentinel(); logits.len()];
            let mut z = logits.clone();
            let (f, fb, ip) = api.objective;
            let status = unsafe {
                match mode {
                    0 => f(logits.as_ptr(), &b, &obj, &mut out),
                    1 => fb(logits.as_ptr(), &b, &obj, grad.as_mut_ptr(), &mut out),
                    _ => ip(z.as_mut_ptr(), &b, &obj, &mut out),
                }
            };
            let scalars = vec![out.loss, out.kl_estimate];
            let mut outputs = vec![
                ("loss, kl_estimate", vec![LOSS_SENTINEL; 2], scalars),
                ("response_logp", vec![OUT_SENTINEL; n], resp_logp.clone()),
                ("dloss_dlogp", vec![OUT_SENTINEL; n], dlogp.clone()),
                ("row_weight", vec![OUT_SENTINEL; rows], row_weight.clone()),
            ];
            let mut must_be_finite = vec![
                ("loss", vec![out.loss]),
                ("response_logp", resp_logp),
                ("dloss_dlogp", dlogp),
                ("row_weight", row_weight),
            ];
            if kind == BNF_OBJECTIVE_KTO {
                must_be_finite.push(("kl_estimate", vec![out.kl_estimate]));
            }
            match mode {
                1 => {
                    let g = dec(&grad, dt);
                    outputs.push(("grad", dec(&vec![E::sentinel(); grad.len()], dt), g.clone()));
                    must_be_finite.push(("grad", g));
                }
                2 => {
                    let g = dec(&z, dt);
                    outputs.push(("logits (in place)", dec(&logits, dt), g.clone()));
                    must_be_finite.push(("grad (in place)", g));
                }
                _ => {}
            }
            Call {
                entry: "bnf_objective_forward".to_string(),
                status,
                finite_logits: finite,
                weightless,
                outputs,
                must_be_finite,
            }
            .check()
            .map_err(|e| TestCaseError::fail(format!("objective {name}, mode {mode}: {e}")))?;
        }
    }
    Ok(())
}

/// The row entries on row 0: statistics, the gradient from them (and from the case's `w`),
/// in place, the dynamic target and BNF's scalars; and `bnf_response_weights`.
fn row_entries<E: Elem>(api: &Api<E>, k: &Case) -> Result<(), TestCaseError> {
    let dt = k.dtype;
    let v = k.vocab;
    let z: Vec<E> = k.logits[..v].iter().map(|&x| E::enc(x, dt)).collect();
    let finite = z.iter().all(|x| x.dec(dt).is_finite());
    let y = k.targets[0];
    let sentinel_stats = BnfRowStats {
        max: 555.0,
        lse: 555.0,
        ell: 555.0,
        sum: 555.0,
        others_sum: 555.0,
        others_dot: 555.0,
    };
    let mut stats = sentinel_stats;
    let status = unsafe { (api.stats)(z.as_ptr(), v, y, &mut stats) };
    let s = stats_values(&stats);
    Call {
        entry: "bnf_row_stats".into(),
        status,
        finite_logits: finite,
        weightless: false,
        outputs: vec![("out", stats_values(&sentinel_stats), s.clone())],
        must_be_finite: vec![("stats", s)],
    }
    .check()?;
    if status != BnfStatus::BNF_OK {
        // Statistics that are not this row's: the entries must refuse them or stay finite.
        stats = BnfRowStats {
            max: 1.0,
            lse: 1.5,
            ell: -0.5,
            sum: 1.5,
            others_sum: 0.5,
            others_dot: -0.3,
        };
    }
    for w in [k.w, k.weights[0], k.label] {
        let mut out = vec![E::sentinel(); v];
        let status = unsafe { (api.grad)(z.as_ptr(), v, y, &stats, w, out.as_mut_ptr()) };
        let g = dec(&out, dt);
        Call {
            entry: "bnf_row_grad".into(),
            status,
            finite_logits: finite,
            weightless: false,
            outputs: vec![("out", dec(&vec![E::sentinel(); v], dt), g.clone())],
            must_be_finite: vec![("out", g)],
        }
        .check()?;
        let mut zz = z.clone();
        let status = unsafe { (api.grad_in_place)(zz.as_mut_ptr(), v, y, &stats, w) };
        let g = dec(&zz, dt);
        Call {
            entry: "bnf_row_grad_in_place".into(),
            status,
            finite_logits: finite,
            weightless: false,
            outputs: vec![("z (in place)", dec(&z, dt), g.clone())],
            must_be_finite: vec![("z (in place)", g)],
        }
        .check()?;
    }
    let mut f = vec![OUT_SENTINEL; v];
    let mut st = sentinel_stats;
    let rho = k.ref_logp[0];
    let status = unsafe { (api.target)(z.as_ptr(), v, y, rho, f.as_mut_ptr(), &mut st) };
    Call {
        entry: "bnf_dynamic_target".into(),
        status,
        finite_logits: finite,
        weightless: false,
        outputs: vec![
            ("f_out", vec![OUT_SENTINEL; v], f.clone()),
            (
                "stats_out",
                stats_values(&sentinel_stats),
                stats_values(&st),
            ),
        ],
        must_be_finite: vec![("f_out", f), ("stats_out", stats_values(&st))],
    }
    .check()?;
    let sentinel = BnfScalars {
        f_y: 3.0,
        c: 3.0,
        cross_entropy: 3.0,
    };
    let mut sc = sentinel;
    let status = unsafe { bnf_scalars(&stats, rho, &mut sc) };
    let vals = |s: &BnfScalars| vec![s.f_y, s.c, s.cross_entropy];
    Call {
        entry: "bnf_scalars".into(),
        status,
        finite_logits: true,
        weightless: false,
        outputs: vec![("out", vals(&sentinel), vals(&sc))],
        must_be_finite: vec![("out", vals(&sc))],
    }
    .check()?;
    let n = k.offsets.len() - 1;
    let labels: Vec<f32> = (0..n)
        .map(|i| if i % 2 == 0 { k.label } else { -k.w })
        .collect();
    let rows = k.targets.len();
    let mut weights = vec![OUT_SENTINEL; rows];
    let status = unsafe {
        bnf_response_weights(
            k.offsets.as_ptr(),
            labels.as_ptr(),
            n,
            k.scored.as_ptr(),
            rows,
            weights.as_mut_ptr(),
        )
    };
    Call {
        entry: "bnf_response_weights".into(),
        status,
        finite_logits: true,
        weightless: false,
        outputs: vec![("weights", vec![OUT_SENTINEL; rows], weights.clone())],
        must_be_finite: vec![("weights", weights)],
    }
    .check()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_host_entry_survives_extreme_finite_inputs(k in case()) {
        match k.dtype {
            0 => {
                batch_entries(&F32, &k)?;
                objective_entries(&F32, &k)?;
                row_entries(&F32, &k)?;
            }
            1 => {
                batch_entries(&F16, &k)?;
                objective_entries(&F16, &k)?;
                row_entries(&F16, &k)?;
            }
            _ => {
                batch_entries(&BF16, &k)?;
                objective_entries(&BF16, &k)?;
                row_entries(&BF16, &k)?;
            }
        }
    }
}

/// Sizes whose byte length no buffer can have are "too large", not an overlap: 2^62 and
/// more as `num_responses`, `num_pairs` or a row entry's `vocab`.
#[test]
fn absurd_sizes_are_too_large_not_overlaps() {
    let expect_too_large = |st: BnfStatus, arg: &str| {
        let m = last_error();
        assert_eq!(st, BnfStatus::BNF_ERR_ZERO_SIZE, "{m}");
        assert!(m.contains("too large") && m.contains(arg), "{m}");
        assert!(!m.contains("overlaps"), "{m}");
    };
    let big = 1usize << 62;
    let (offsets, labels, mut weights) = ([0usize, 1], [1.0f32], [0.0f32]);
    for n in [big, usize::MAX] {
        let st = unsafe {
            bnf_response_weights(
                offsets.as_ptr(),
                labels.as_ptr(),
                n,
                std::ptr::null(),
                1,
                weights.as_mut_ptr(),
            )
        };
        expect_too_large(st, "offsets");
    }
    let z = [0.0f32; 2];
    let mut stats = BnfRowStats::default();
    for v in [big, usize::MAX] {
        expect_too_large(
            unsafe { bnf_row_stats_f32(z.as_ptr(), v, 0, &mut stats) },
            "`z`",
        );
        let mut f = [0.0f32; 2];
        let st =
            unsafe { bnf_dynamic_target_f32(z.as_ptr(), v, 0, -1.0, f.as_mut_ptr(), &mut stats) };
        expect_too_large(st, "`z`");
    }
    let s = unsafe {
        let mut s = BnfRowStats::default();
        assert_eq!(
            bnf_row_stats_f32(z.as_ptr(), 2, 0, &mut s),
            BnfStatus::BNF_OK
        );
        s
    };
    let mut out = [0.0f32; 2];
    let st = unsafe { bnf_row_grad_f32(z.as_ptr(), big, 0, &s, 1.0, out.as_mut_ptr()) };
    expect_too_large(st, "`z`");
    // The objective entries: num_responses and num_pairs.
    let targets = [0u32];
    let pairs = [0usize, 1];
    let mut b = BnfPrefBatch {
        vocab: 2,
        rows: 1,
        targets: targets.as_ptr(),
        scored: std::ptr::null(),
        num_responses: big,
        offsets: offsets.as_ptr(),
        labels: labels.as_ptr(),
        num_pairs: 0,
        pairs: pairs.as_ptr(),
        ref_logp: std::ptr::null(),
    };
    let mut obj = BnfObjective::default();
    let name = std::ffi::CString::new("nll").unwrap();
    assert_eq!(
        unsafe { bnf_objective_default(name.as_ptr(), &mut obj) },
        BnfStatus::BNF_OK
    );
    let mut o = BnfObjectiveOut {
        loss: 0.0,
        kl_estimate: 0.0,
        response_logp: std::ptr::null_mut(),
        dloss_dlogp: std::ptr::null_mut(),
        row_weight: std::ptr::null_mut(),
    };
    expect_too_large(
        unsafe { bnf_objective_forward_f32(z.as_ptr(), &b, &obj, &mut o) },
        "offsets",
    );
    b.num_responses = 1;
    b.num_pairs = big;
    expect_too_large(
        unsafe { bnf_objective_forward_f32(z.as_ptr(), &b, &obj, &mut o) },
        "pairs",
    );
}
