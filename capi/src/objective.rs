//! Every objective of `bnf-core` (BNF, NLL and the sequence-level baselines: NLL+PLL, DPO, IPO,
//! SLiC-HF, SimPO, R-DPO, CPO, ORPO, KTO) through one C call: the C structs describing the
//! responses ([`BnfPrefBatch`]), the objective and its parameters ([`BnfObjective`]) and what
//! comes back ([`BnfObjectiveOut`]), their conversions to core's `PrefBatch` and `Objective`,
//! and the generic bodies of the `bnf_objective_*` entry points. The maths and the checks of the
//! batch (offsets, labels, pairs, reference) are core's.

use std::ffi::{c_char, CStr};

use bnf_core::{
    BnfError, CpoConfig, DpoConfig, IpoConfig, KtoConfig, Logit, Objective, ObjectiveOutput,
    OrpoConfig, PrefBatch, RDpoConfig, SimPoConfig, SlicConfig, OBJECTIVE_NAMES,
};

use crate::batch::{check_overlaps_with_logits, elements, scored_flags, Grad};
use crate::guard::{check_ptr, entry, required, slice, slice_mut, Region};
use crate::status::{BnfStatus, Fail};

/// `BnfObjective::kind`: BNF (paper eq. 4), row-local; needs `ref_logp`.
pub const BNF_OBJECTIVE_BNF: u32 = 0;
/// NLL (SFT), row-local.
pub const BNF_OBJECTIVE_NLL: u32 = 1;
/// NLL+PLL (paper eq. 1); needs pairs.
pub const BNF_OBJECTIVE_NLL_PLL: u32 = 2;
/// DPO (`beta`); needs pairs and `ref_logp`.
pub const BNF_OBJECTIVE_DPO: u32 = 3;
/// IPO (`tau`); needs pairs and `ref_logp`.
pub const BNF_OBJECTIVE_IPO: u32 = 4;
/// SLiC-HF (`margin`, `lambda`); needs pairs.
pub const BNF_OBJECTIVE_SLIC_HF: u32 = 5;
/// SimPO (`beta`, `gamma`); needs pairs.
pub const BNF_OBJECTIVE_SIMPO: u32 = 6;
/// R-DPO (`beta`, `alpha`); needs pairs and `ref_logp`.
pub const BNF_OBJECTIVE_RDPO: u32 = 7;
/// CPO (`beta`); needs pairs.
pub const BNF_OBJECTIVE_CPO: u32 = 8;
/// ORPO (`lambda`); needs pairs.
pub const BNF_OBJECTIVE_ORPO: u32 = 9;
/// KTO (`beta`, `desirable_weight`, `undesirable_weight`, `z0`); unpaired; needs `ref_logp`.
pub const BNF_OBJECTIVE_KTO: u32 = 10;

/// An objective and its parameters (`losses.md`). Fill it with `bnf_objective_default`, then
/// change the parameters the objective uses; the others are ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BnfObjective {
    /// One of `BNF_OBJECTIVE_*`.
    pub kind: u32,
    /// Inverse temperature (DPO, R-DPO, CPO, KTO) or reward scale (SimPO), `> 0`.
    pub beta: f32,
    /// IPO's regularisation, `> 0`.
    pub tau: f32,
    /// SLiC-HF's hinge margin.
    pub margin: f32,
    /// SLiC-HF's NLL weight or ORPO's odds-ratio weight, `>= 0`.
    pub lambda: f32,
    /// SimPO's target margin.
    pub gamma: f32,
    /// R-DPO's length weight.
    pub alpha: f32,
    /// KTO's weight of desirable responses, `>= 0`.
    pub desirable_weight: f32,
    /// KTO's weight of undesirable responses, `>= 0`.
    pub undesirable_weight: f32,
    /// KTO's reference point; NaN: estimated from the batch.
    pub z0: f32,
}

/// Responses for `bnf_objective_*`, row-major `rows x vocab` logits. Response `i` owns rows
/// `offsets[i] .. offsets[i + 1]`, of which the scored ones are its completion tokens.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BnfPrefBatch {
    /// Vocabulary size `V`, at least 1.
    pub vocab: usize,
    /// Number of rows, at least 1.
    pub rows: usize,
    /// `rows` target ids (the next token), below `vocab` on scored rows.
    pub targets: *const u32,
    /// `rows` flags, nonzero = the row is scored; NULL = every row.
    pub scored: *const u8,
    /// Number of responses, at least 1.
    pub num_responses: usize,
    /// `num_responses + 1` offsets: 0, non-decreasing, ending at `rows`.
    pub offsets: *const usize,
    /// `num_responses` labels: +1 (`BNF_PREFERRED`, chosen) or -1 (rejected).
    pub labels: *const f32,
    /// Number of `(chosen, rejected)` pairs; 0 for unpaired data.
    pub num_pairs: usize,
    /// `2 * num_pairs` response indices, chosen then rejected per pair; NULL when `num_pairs`
    /// is 0. Pairwise objectives need every response in a pair.
    pub pairs: *const usize,
    /// `rows` reference log-probs `log pi_ref(y)`: finite and `<= 0` (values in `(0, 1e-3]` are
    /// f32 rounding and read as 0; `-inf` is refused: the log-ratio would be infinite), or NULL
    /// when the objective does not use them.
    pub ref_logp: *const f32,
}

/// What `bnf_objective_*` writes besides the gradient. The caller sets the array pointers (each
/// may be NULL); the library writes `loss`, `kl_estimate` and the arrays given.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BnfObjectiveOut {
    /// The batch loss: the mean over pairs (pairwise objectives) or responses.
    pub loss: f32,
    /// KTO's reference point `z0` as used; NaN for the other objectives.
    pub kl_estimate: f32,
    /// `num_responses` floats: each response's summed log-prob `lp_i`, or NULL.
    pub response_logp: *mut f32,
    /// `num_responses` floats: `dloss / dlp_i` (for BNF the mean of `-row_weight` over the
    /// response's rows), or NULL.
    pub dloss_dlogp: *mut f32,
    /// `rows` floats: the `w_r` of each row's gradient `w_r (pi - onehot(y_r))`, or NULL.
    pub row_weight: *mut f32,
}

impl BnfObjective {
    /// The C description of `o`, unused parameters 0 and `z0` NaN.
    fn from_core(o: &Objective, kind: u32) -> Self {
        let mut c = BnfObjective {
            kind,
            z0: f32::NAN,
            ..BnfObjective::default()
        };
        match *o {
            Objective::Bnf | Objective::Nll | Objective::NllPll => {}
            Objective::Dpo(DpoConfig { beta }) | Objective::Cpo(CpoConfig { beta }) => {
                c.beta = beta
            }
            Objective::Ipo(IpoConfig { tau }) => c.tau = tau,
            Objective::SlicHf(SlicConfig { margin, lambda }) => {
                (c.margin, c.lambda) = (margin, lambda)
            }
            Objective::SimPo(SimPoConfig { beta, gamma }) => (c.beta, c.gamma) = (beta, gamma),
            Objective::RDpo(RDpoConfig { beta, alpha }) => (c.beta, c.alpha) = (beta, alpha),
            Objective::Orpo(OrpoConfig { lambda }) => c.lambda = lambda,
            Objective::Kto(k) => {
                c.beta = k.beta;
                c.desirable_weight = k.desirable_weight;
                c.undesirable_weight = k.undesirable_weight;
                c.z0 = k.z0.unwrap_or(f32::NAN);
            }
        }
        c
    }

    /// Core's objective (its parameters are checked by core when it runs).
    fn to_core(self) -> Result<Objective, Fail> {
        let c = self;
        Ok(match c.kind {
            BNF_OBJECTIVE_BNF => Objective::Bnf,
            BNF_OBJECTIVE_NLL => Objective::Nll,
            BNF_OBJECTIVE_NLL_PLL => Objective::NllPll,
            BNF_OBJECTIVE_DPO => Objective::Dpo(DpoConfig { beta: c.beta }),
            BNF_OBJECTIVE_IPO => Objective::Ipo(IpoConfig { tau: c.tau }),
            BNF_OBJECTIVE_SLIC_HF => Objective::SlicHf(SlicConfig {
                margin: c.margin,
                lambda: c.lambda,
            }),
            BNF_OBJECTIVE_SIMPO => Objective::SimPo(SimPoConfig {
                beta: c.beta,
                gamma: c.gamma,
            }),
            BNF_OBJECTIVE_RDPO => Objective::RDpo(RDpoConfig {
                beta: c.beta,
                alpha: c.alpha,
            }),
            BNF_OBJECTIVE_CPO => Objective::Cpo(CpoConfig { beta: c.beta }),
            BNF_OBJECTIVE_ORPO => Objective::Orpo(OrpoConfig { lambda: c.lambda }),
            BNF_OBJECTIVE_KTO => Objective::Kto(KtoConfig {
                beta: c.beta,
                desirable_weight: c.desirable_weight,
                undesirable_weight: c.undesirable_weight,
                z0: (!c.z0.is_nan()).then_some(c.z0),
            }),
            k => {
                return Err(Fail::new(
                    BnfStatus::BNF_ERR_INVALID_ARGUMENT,
                    format!("objective->kind is {k}, not one of BNF_OBJECTIVE_* (0 to 10)"),
                ))
            }
        })
    }
}

/// Body of `bnf_objective_default`: `*out` = the objective called `name` (core's
/// `Objective::parse`: "dpo", "simpo", "kto", ...) with its default parameters.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` points to a writable `BnfObjective`.
pub(crate) unsafe fn default(name: *const c_char, out: *mut BnfObjective) -> Result<(), Fail> {
    // Checked as a raw pointer, then read through it: a `&c_char` would give `CStr::from_ptr`
    // the provenance of one byte only. The name is copied before `out` is borrowed.
    check_ptr(name, "name")?;
    let text = CStr::from_ptr(name).to_string_lossy().into_owned();
    let out = slice_mut(out, 1, "out")?;
    let o = Objective::parse(&text).ok_or_else(|| {
        Fail::new(
            BnfStatus::BNF_ERR_INVALID_ARGUMENT,
            format!(
                "argument `name`: unknown objective {text:?}; known: {}",
                OBJECTIVE_NAMES.join(", ")
            ),
        )
    })?;
    let kind = OBJECTIVE_NAMES.iter().position(|&n| n == o.name());
    out[0] = BnfObjective::from_core(&o, kind.unwrap_or(usize::MAX) as u32);
    Ok(())
}

/// A core error of an objective call, naming the C argument where core's words cannot: the
/// NULL `batch->ref_logp`, `batch->num_pairs` of 0, the out-of-range `objective->` field.
fn objective_error(e: BnfError) -> Fail {
    let status = BnfStatus::of(&e);
    match e {
        BnfError::MissingReference { objective } => Fail::new(
            status,
            format!(
                "argument `batch->ref_logp` is NULL, but {objective} needs reference log-probs"
            ),
        ),
        BnfError::MissingPairs { objective } => Fail::new(
            status,
            format!("{objective} is pairwise, but batch->num_pairs is 0 (no pairs given)"),
        ),
        BnfError::InvalidConfig {
            objective,
            what,
            value,
        } if what.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => Fail::new(
            status,
            format!("objective->{what} = {value} is out of range for {objective}"),
        ),
        other => other.into(),
    }
}

/// The C outputs, checked before anything is computed.
struct Outputs<'a> {
    out: &'a mut BnfObjectiveOut,
    response_logp: Option<&'a mut [f32]>,
    dloss_dlogp: Option<&'a mut [f32]>,
    row_weight: Option<&'a mut [f32]>,
}

/// An optional output array of `len` floats.
unsafe fn optional_array<'a>(
    p: *mut f32,
    len: usize,
    what: &str,
) -> Result<Option<&'a mut [f32]>, Fail> {
    if p.is_null() {
        Ok(None)
    } else {
        Ok(Some(slice_mut(p, len, what)?))
    }
}

impl Outputs<'_> {
    fn write(self, o: &ObjectiveOutput) {
        self.out.loss = o.loss;
        self.out.kl_estimate = o.kl_estimate.unwrap_or(f32::NAN);
        for (dst, src) in [
            (self.response_logp, &o.logp),
            (self.dloss_dlogp, &o.dloss_dlogp),
            (self.row_weight, &o.row_weight),
        ] {
            if let Some(d) = dst {
                d.copy_from_slice(src);
            }
        }
    }
}

/// Reject outputs (`*out`, the arrays it points to, the gradient or, in place, the logits)
/// that overlap the batch's arrays, the logits or each other.
fn check_overlaps<T>(
    b: &BnfPrefBatch,
    logits: *const T,
    elements: usize,
    grad: &Grad<T>,
    out: *const BnfObjectiveOut,
    o: &BnfObjectiveOut,
) -> Result<(), Fail> {
    let (rows, responses) = (b.rows, b.num_responses);
    let inputs = vec![
        Region::of(b.targets, rows, "batch->targets"),
        Region::of(b.scored, rows, "batch->scored"),
        Region::of(b.offsets, responses.saturating_add(1), "batch->offsets"),
        Region::of(b.labels, responses, "batch->labels"),
        Region::of(b.pairs, b.num_pairs.saturating_mul(2), "batch->pairs"),
        Region::of(b.ref_logp, rows, "batch->ref_logp"),
    ];
    let outputs = vec![
        Region::of(out, 1, "out"),
        Region::of(o.response_logp, responses, "out->response_logp"),
        Region::of(o.dloss_dlogp, responses, "out->dloss_dlogp"),
        Region::of(o.row_weight, rows, "out->row_weight"),
    ];
    check_overlaps_with_logits(logits, elements, grad, inputs, outputs)
}

/// Run the objective at `objective` over `batch` with logits at `logits`.
///
/// # Safety
/// The header's contract: `logits` (and a separate `grad`) hold `rows * vocab` elements, the
/// arrays of `batch` and `out` the sizes their fields state; no output overlaps anything else
/// (checked).
unsafe fn run<T: Logit>(
    logits: *mut T,
    batch: *const BnfPrefBatch,
    objective: *const BnfObjective,
    grad: Grad<T>,
    out: *mut BnfObjectiveOut,
) -> Result<(), Fail> {
    // Copies: the outputs are checked against the arrays they point to, not against them.
    let b = *required(batch, "batch")?;
    let obj = required(objective, "objective")?.to_core()?;
    let n = elements(b.vocab, b.rows)?;
    let o = *required(out.cast_const(), "out")?;
    check_overlaps(&b, logits.cast_const(), n, &grad, out, &o)?;
    let scored = scored_flags(b.scored, b.rows)?;
    let pairs = match b.num_pairs {
        0 => None,
        p => Some(slice(b.pairs.cast::<[usize; 2]>(), p, "batch->pairs")?),
    };
    let ref_logp = match b.ref_logp.is_null() {
        true => None,
        false => Some(slice(b.ref_logp, b.rows, "batch->ref_logp")?),
    };
    if b.num_responses == 0 {
        // Named here: the labels slice below would report it as a zero-length `labels`.
        return Err(Fail::new(
            BnfStatus::BNF_ERR_ZERO_SIZE,
            "batch->num_responses is 0 (every batch has at least one response)",
        ));
    }
    let pb = PrefBatch {
        vocab: b.vocab,
        targets: slice(b.targets, b.rows, "batch->targets")?,
        scored: scored.as_deref(),
        offsets: slice(
            b.offsets,
            b.num_responses.saturating_add(1),
            "batch->offsets",
        )?,
        labels: slice(b.labels, b.num_responses, "batch->labels")?,
        pairs,
        ref_logp,
    };
    let outs = Outputs {
        response_logp: optional_array(o.response_logp, b.num_responses, "out->response_logp")?,
        dloss_dlogp: optional_array(o.dloss_dlogp, b.num_responses, "out->dloss_dlogp")?,
        row_weight: optional_array(o.row_weight, b.rows, "out->row_weight")?,
        out: &mut slice_mut(out, 1, "out")?[0],
    };
    let result = match grad {
        Grad::None => {
            let z = slice(logits.cast_const(), n, "logits")?;
            bnf_core::objective_forward(z, &pb, &obj)
        }
        Grad::Into(g) => {
            let z = slice(logits.cast_const(), n, "logits")?;
            bnf_core::objective_forward_backward(z, &pb, &obj, slice_mut(g, n, "grad")?)
        }
        Grad::InPlace => {
            let z = slice_mut(logits, n, "logits")?;
            bnf_core::objective_forward_backward_in_place(z, &pb, &obj)
        }
    }
    .map_err(objective_error)?;
    outs.write(&result);
    Ok(())
}

/// Body of `bnf_objective_forward_*` (entry point `name`): the loss and diagnostics only.
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn forward<T: Logit>(
    name: &str,
    logits: *const T,
    batch: *const BnfPrefBatch,
    objective: *const BnfObjective,
    out: *mut BnfObjectiveOut,
) -> BnfStatus {
    let logits = logits.cast_mut();
    entry(name, || run(logits, batch, objective, Grad::None, out))
}

/// Body of `bnf_objective_forward_backward_*`: the gradient into `grad` as well.
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn forward_backward<T: Logit>(
    name: &str,
    logits: *const T,
    batch: *const BnfPrefBatch,
    objective: *const BnfObjective,
    grad: *mut T,
    out: *mut BnfObjectiveOut,
) -> BnfStatus {
    let (logits, grad) = (logits.cast_mut(), Grad::Into(grad));
    entry(name, || run(logits, batch, objective, grad, out))
}

/// Body of `bnf_objective_forward_backward_in_place_*`: the gradient over the logits.
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn in_place<T: Logit>(
    name: &str,
    logits: *mut T,
    batch: *const BnfPrefBatch,
    objective: *const BnfObjective,
    out: *mut BnfObjectiveOut,
) -> BnfStatus {
    entry(name, || run(logits, batch, objective, Grad::InPlace, out))
}
