//! The host half of a sequence-level objective when its rows run elsewhere (the GPU path): from
//! each response's summed log-probs (policy and reference) and length, the batch loss, one term
//! per pair (per response for KTO) and `dloss/dlp` per response. These are bnf-core's sums in
//! core's order, over core's public scalar losses (`bnf_core::seq`); core keeps its own batch
//! reduction private, so `tests/objective.rs` holds this one to core's results bit for bit for
//! every objective.

use bnf_core::seq::{
    cpo_loss, dpo_loss, ipo_loss, kto_loss, kto_z0, nll_pll_loss, orpo_loss, rdpo_loss, simpo_loss,
    slic_hf_loss, PairInput, PairLoss,
};
use bnf_core::Objective;

/// Per-response inputs of a sequence-level loss.
#[derive(Clone, Copy, Debug)]
pub struct SeqInputs<'a> {
    /// `lp_i`: the policy's summed log-prob of response `i` over its scored rows.
    pub logp: &'a [f32],
    /// `rp_i`: the reference's (empty when the objective has no reference: read as 0).
    pub ref_logp: &'a [f32],
    /// `|y_i|`: scored rows of response `i` (at least 1).
    pub lengths: &'a [usize],
    /// `+1` preferred, `-1` dispreferred.
    pub labels: &'a [f32],
    /// `[chosen, rejected]` response indices.
    pub pairs: &'a [[usize; 2]],
}

/// The batch loss of a sequence-level objective and its derivatives.
#[derive(Clone, Debug, PartialEq)]
pub struct SeqLoss {
    /// Mean of `terms` (in `f64`).
    pub loss: f32,
    /// One per pair (pairwise objectives) or per response (KTO).
    pub terms: Vec<f32>,
    /// `dloss/dlp_i` per response.
    pub dloss_dlogp: Vec<f32>,
    /// KTO's `z0` as used; `None` otherwise.
    pub kl_estimate: Option<f32>,
}

/// One pair's loss under a pairwise objective.
fn pair_loss(obj: &Objective, p: &PairInput) -> Result<PairLoss, String> {
    Ok(match obj {
        Objective::NllPll => nll_pll_loss(p),
        Objective::Dpo(c) => dpo_loss(p, c),
        Objective::Ipo(c) => ipo_loss(p, c),
        Objective::SlicHf(c) => slic_hf_loss(p, c),
        Objective::SimPo(c) => simpo_loss(p, c),
        Objective::RDpo(c) => rdpo_loss(p, c),
        Objective::Cpo(c) => cpo_loss(p, c),
        Objective::Orpo(c) => orpo_loss(p, c),
        Objective::Bnf | Objective::Nll | Objective::Kto(_) => {
            return Err(format!("{} is not a pairwise objective", obj.name()))
        }
    })
}

/// Mean in `f64`, 0 for no terms.
fn mean(terms: &[f32]) -> f32 {
    if terms.is_empty() {
        return 0.0;
    }
    (terms.iter().map(|&t| t as f64).sum::<f64>() / terms.len() as f64) as f32
}

/// The loss of `obj` (a sequence-level objective: not BNF or NLL) on `s`. Pairs must name
/// responses of the batch, and a pairwise objective needs every response in a pair.
pub fn sequence_loss(obj: &Objective, s: &SeqInputs<'_>) -> Result<SeqLoss, String> {
    let n = s.logp.len();
    let rp = |i: usize| s.ref_logp.get(i).copied().unwrap_or(0.0);
    if let Objective::Kto(cfg) = obj {
        let z0 = cfg
            .z0
            .unwrap_or_else(|| kto_z0((0..n).map(|i| s.logp[i] - rp(i))));
        let (terms, g): (Vec<f32>, Vec<f32>) = (0..n)
            .map(|i| {
                let l = kto_loss(s.logp[i], rp(i), s.labels[i] > 0.0, z0, cfg);
                (l.loss, l.d / n as f32)
            })
            .unzip();
        return Ok(SeqLoss {
            loss: mean(&terms),
            terms,
            dloss_dlogp: g,
            kl_estimate: Some(z0),
        });
    }
    let mut paired = vec![false; n];
    for (p, &[c, r]) in s.pairs.iter().enumerate() {
        if c >= n || r >= n {
            return Err(format!(
                "pair {p}: response index out of range ({n} responses)"
            ));
        }
        paired[c] = true;
        paired[r] = true;
    }
    if let Some(i) = paired.iter().position(|&p| !p) {
        return Err(format!(
            "{}: response {i} of the batch has no partner (pairwise objective)",
            obj.name()
        ));
    }
    let n_pairs = s.pairs.len() as f64;
    let mut g = vec![0.0f64; n];
    let mut terms = Vec::with_capacity(s.pairs.len());
    for &[c, r] in s.pairs {
        let input = PairInput {
            lp_w: s.logp[c],
            lp_l: s.logp[r],
            rp_w: rp(c),
            rp_l: rp(r),
            len_w: s.lengths[c],
            len_l: s.lengths[r],
        };
        let pl = pair_loss(obj, &input)?;
        g[c] += pl.d_w as f64 / n_pairs;
        g[r] += pl.d_l as f64 / n_pairs;
        terms.push(pl.loss);
    }
    Ok(SeqLoss {
        loss: mean(&terms),
        terms,
        dloss_dlogp: g.into_iter().map(|x| x as f32).collect(),
        kl_estimate: None,
    })
}
