//! The baseline losses of `losses.md`, written literally in `f64` with no code shared with
//! `bnf-core` (only its configuration structs are read, as data): per-pair formulas, KTO, and
//! whole-batch losses computed from logits through [`crate::oracle::log_softmax`].

use bnf_core::Objective;

use crate::oracle::log_softmax;

/// One pair's per-response quantities in `f64`.
#[derive(Clone, Copy, Debug)]
pub struct Pair64 {
    /// Chosen summed policy log-prob.
    pub lp_w: f64,
    /// Rejected summed policy log-prob.
    pub lp_l: f64,
    /// Chosen summed reference log-prob.
    pub rp_w: f64,
    /// Rejected summed reference log-prob.
    pub rp_l: f64,
    /// Chosen length.
    pub len_w: f64,
    /// Rejected length.
    pub len_l: f64,
}

/// `1 / (1 + e^-x)`.
pub fn sigma(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `log sigma(x)`, written so that it does not overflow for large `|x|`.
pub fn logsig(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

/// ORPO's `log(q / (1 - q))` of `a = log q`.
pub fn log_odds(a: f64) -> f64 {
    a - (1.0 - a.exp()).ln()
}

/// The loss of one pair for a pairwise objective, straight from the `losses.md` table.
/// Panics for an unpaired objective (a test bug).
pub fn pair_loss(obj: &Objective, p: &Pair64) -> f64 {
    let cl = p.lp_w - p.rp_w;
    let rl = p.lp_l - p.rp_l;
    let delta = cl - rl;
    match obj {
        Objective::NllPll => -p.lp_w + p.lp_l,
        Objective::Dpo(c) => -logsig(c.beta as f64 * delta),
        Objective::Ipo(c) => (cl / p.len_w - rl / p.len_l - 1.0 / (2.0 * c.tau as f64)).powi(2),
        Objective::SlicHf(c) => {
            (c.margin as f64 - p.lp_w + p.lp_l).max(0.0) - c.lambda as f64 * p.lp_w
        }
        Objective::SimPo(c) => {
            -logsig(c.beta as f64 * (p.lp_w / p.len_w - p.lp_l / p.len_l) - c.gamma as f64)
        }
        Objective::RDpo(c) => -logsig(c.beta as f64 * delta + c.alpha as f64 * (p.len_w - p.len_l)),
        Objective::Cpo(c) => -logsig(c.beta as f64 * (p.lp_w - p.lp_l)) - p.lp_w / p.len_w,
        Objective::Orpo(c) => {
            let (a_w, a_l) = (p.lp_w / p.len_w, p.lp_l / p.len_l);
            -a_w - c.lambda as f64 * logsig(log_odds(a_w) - log_odds(a_l))
        }
        other => panic!("{} is not pairwise", other.name()),
    }
}

/// KTO for one response: desirable `w_D (1 - sigma(beta (cl - z0)))`, undesirable
/// `w_U (1 - sigma(beta (z0 - rl)))`.
pub fn kto_loss(obj: &Objective, lp: f64, rp: f64, desirable: bool, z0: f64) -> f64 {
    let Objective::Kto(c) = obj else {
        panic!("not KTO")
    };
    let ratio = lp - rp;
    let beta = c.beta as f64;
    if desirable {
        c.desirable_weight as f64 * (1.0 - sigma(beta * (ratio - z0)))
    } else {
        c.undesirable_weight as f64 * (1.0 - sigma(beta * (z0 - ratio)))
    }
}

/// A batch in `f64` (mirrors `bnf_core::PrefBatch`).
#[derive(Clone, Copy, Debug)]
pub struct Batch64<'a> {
    /// Vocabulary size.
    pub vocab: usize,
    /// Target per row.
    pub targets: &'a [u32],
    /// Scored rows (`None`: all).
    pub scored: Option<&'a [bool]>,
    /// Response boundaries.
    pub offsets: &'a [usize],
    /// Labels per response.
    pub labels: &'a [f32],
    /// Pairs (chosen, rejected).
    pub pairs: &'a [[usize; 2]],
    /// Reference log-prob per row.
    pub ref_logp: &'a [f64],
}

impl Batch64<'_> {
    fn scored(&self, r: usize) -> bool {
        self.scored.is_none_or(|m| m[r])
    }

    /// Per response: `(sum of log pi(y_r), sum of ref_logp, number of scored rows)`.
    pub fn sums(&self, z: &[f64]) -> Vec<(f64, f64, f64)> {
        self.offsets
            .windows(2)
            .map(|w| {
                let (mut lp, mut rp, mut n) = (0.0, 0.0, 0.0);
                for r in (w[0]..w[1]).filter(|&r| self.scored(r)) {
                    let row = &z[r * self.vocab..(r + 1) * self.vocab];
                    lp += log_softmax(row)[self.targets[r] as usize];
                    rp += self.ref_logp.get(r).copied().unwrap_or(0.0);
                    n += 1.0;
                }
                (lp, rp, n)
            })
            .collect()
    }

    /// The batch loss of a sequence-level objective (or NLL) at logits `z`: mean over pairs,
    /// or over responses for NLL and KTO. KTO's `z0` must be given.
    pub fn loss(&self, obj: &Objective, z: &[f64]) -> f64 {
        let s = self.sums(z);
        let n = s.len() as f64;
        match obj {
            Objective::Nll => {
                s.iter()
                    .zip(self.labels)
                    .map(|(&(lp, _, len), &l)| -(l as f64) * lp / len)
                    .sum::<f64>()
                    / n
            }
            Objective::Kto(c) => {
                let z0 = c.z0.expect("oracle KTO needs a fixed z0") as f64;
                s.iter()
                    .zip(self.labels)
                    .map(|(&(lp, rp, _), &l)| kto_loss(obj, lp, rp, l > 0.0, z0))
                    .sum::<f64>()
                    / n
            }
            Objective::Bnf => panic!("BNF is checked against crate::oracle"),
            _ => {
                self.pairs
                    .iter()
                    .map(|&[c, r]| {
                        let p = Pair64 {
                            lp_w: s[c].0,
                            lp_l: s[r].0,
                            rp_w: s[c].1,
                            rp_l: s[r].1,
                            len_w: s[c].2,
                            len_l: s[r].2,
                        };
                        pair_loss(obj, &p)
                    })
                    .sum::<f64>()
                    / self.pairs.len() as f64
            }
        }
    }
}
