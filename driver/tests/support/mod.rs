//! Inputs and comparisons for the GPU tests and the benchmark: a seeded generator of batches
//! (random and adversarial rows) and tolerance checks against `bnf-core`.
#![allow(dead_code)]

use bnf_core::{math, Batch, Logit, RowDiag};

/// SplitMix64: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A batch held by value: logits (as f32, converted per dtype), targets, weights, mask and
/// reference log-probs.
pub struct Case {
    pub name: String,
    pub vocab: usize,
    pub logits: Vec<f32>,
    pub targets: Vec<u32>,
    pub weights: Vec<f32>,
    pub scored: Option<Vec<bool>>,
    pub ref_logp: Vec<f32>,
    pub num_responses: usize,
}

impl Case {
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            vocab: self.vocab,
            targets: &self.targets,
            weights: &self.weights,
            scored: self.scored.as_deref(),
            num_responses: self.num_responses,
        }
    }
    pub fn rows(&self) -> usize {
        self.targets.len()
    }
    pub fn logits_as<T: Logit>(&self) -> Vec<T> {
        self.logits.iter().map(|&v| T::from_f32(v)).collect()
    }
}

/// `rows` random rows: logits ~ U(-scale, scale), random targets, weights +-1/len over
/// responses of 4 rows, reference log-probs spread over (-12, 0] with some -inf and 0, and
/// every 7th row masked.
pub fn random_case(seed: u64, rows: usize, vocab: usize, scale: f32) -> Case {
    let mut rng = Rng::new(seed);
    let logits = (0..rows * vocab)
        .map(|_| rng.range(-scale, scale))
        .collect();
    let targets = (0..rows).map(|_| rng.below(vocab) as u32).collect();
    let scored: Vec<bool> = (0..rows).map(|r| r % 7 != 3).collect();
    let num_responses = rows.div_ceil(4);
    let weights = (0..rows)
        .map(|r| {
            let label = if (r / 4) % 2 == 0 { 1.0 } else { -1.0 };
            if scored[r] {
                label / 4.0
            } else {
                0.0
            }
        })
        .collect();
    let ref_logp = (0..rows)
        .map(|r| match r % 11 {
            0 => f32::NEG_INFINITY,
            5 => 0.0,
            _ => -rng.range(0.0, 12.0),
        })
        .collect();
    Case {
        name: format!("random seed {seed} rows {rows} V {vocab} scale {scale}"),
        vocab,
        logits,
        targets,
        weights,
        scored: Some(scored),
        ref_logp,
        num_responses,
    }
}

/// Rows that stress the numerics, each vocabulary size `vocab`:
/// pi_y -> 1 (target logit far above the rest) with pi_ref near 1 and near 0, pi_y = 1 exactly
/// in f32 (`S' = 0`, by logits of +-1e4 and by -inf logits) with rho = 0 and rho near 0,
/// logits of magnitude 1e4, an all-equal row, -inf logits off the target, rho = 0 (c = 0),
/// rho = -inf (c = 1), and pi_y -> 0.
pub fn adversarial_case(vocab: usize) -> Case {
    let mut rng = Rng::new(vocab as u64);
    let mut logits = Vec::new();
    let mut targets = Vec::new();
    let mut ref_logp = Vec::new();
    let mut push = |row: Vec<f32>, y: usize, rho: f32| {
        logits.extend(row);
        targets.push(y as u32);
        ref_logp.push(rho);
    };
    let y = vocab / 2;
    let peaked = |hi: f32, rest: f32| {
        (0..vocab)
            .map(|j| if j == y { hi } else { rest })
            .collect::<Vec<_>>()
    };
    push(peaked(40.0, 0.0), y, -1e-7);
    push(peaked(40.0, 0.0), y, -30.0);
    push(peaked(-40.0, 0.0), y, -1e-3);
    push(peaked(1e4, -1e4), y, 0.0);
    push(peaked(1e4, -1e4), y, -1e-7);
    push(peaked(0.5, f32::NEG_INFINITY), y, -0.5);
    let big: Vec<f32> = (0..vocab).map(|_| rng.range(-1e4, 1e4)).collect();
    push(big, y, -2.0);
    let mut big_y: Vec<f32> = (0..vocab).map(|_| rng.range(-1e4, 1e4)).collect();
    big_y[y] = 1e4;
    push(big_y, y, -0.5);
    push(vec![3.0; vocab], y, -(vocab as f32).ln());
    push(vec![-7.0; vocab], y, 0.0);
    push(peaked(-20.0, 5.0), y, f32::NEG_INFINITY);
    let masked: Vec<f32> = (0..vocab)
        .map(|j| {
            if j == y || j % 3 == 0 {
                rng.range(-2.0, 2.0)
            } else {
                f32::NEG_INFINITY
            }
        })
        .collect();
    push(masked, y, -1.0);
    let rows = targets.len();
    Case {
        name: format!("adversarial V {vocab}"),
        vocab,
        logits,
        targets,
        weights: (0..rows)
            .map(|r| if r % 2 == 0 { 0.5 } else { -0.5 })
            .collect(),
        scored: None,
        ref_logp,
        num_responses: rows.div_ceil(2),
    }
}

/// `|a - b| <= atol + rtol |b|` for every element, else the first offender.
pub fn close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) -> Result<(), String> {
    close_rows(what, got, want, got.len().max(1), &[rtol], atol)
}

/// [`close`] with rows of `vocab` elements, row `r` compared with `rtol[r]`.
pub fn close_rows(
    what: &str,
    got: &[f32],
    want: &[f32],
    vocab: usize,
    rtol: &[f32],
    atol: f32,
) -> Result<(), String> {
    if got.len() != want.len() || got.len() > vocab * rtol.len() {
        return Err(format!("{what}: length {} != {}", got.len(), want.len()));
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let rtol = rtol[i / vocab];
        let ok = g == w || (g - w).abs() <= atol + rtol * w.abs();
        if !ok {
            return Err(format!(
                "{what}[{i}]: gpu {g:e} vs core {w:e} (rtol {rtol:e}, atol {atol:e})"
            ));
        }
    }
    Ok(())
}

/// Relative tolerance for values stored in `T` (a few units in the last place).
pub fn rtol_of<T: Logit>() -> f32 {
    match T::NAME {
        "bf16" => 2.0 * 2f32.powi(-8),
        "f16" => 2.0 * 2f32.powi(-11),
        _ => 2e-5,
    }
}

/// Gradient tolerance of one row: [`rtol_of`], plus, for a BNF row where core's or the GPU's
/// `c` (`gpu_c`) is below 1, the f32 rounding of `log c`: its terms (`ell`, `ln S`, `ln S'`,
/// `log_odds(rho)`) are rounded to a few ulp of their magnitude, and `c = e^(log c)` turns that
/// absolute error into a relative one of every gradient element of the row.
pub fn grad_rtol<T: Logit>(d: &RowDiag, rho: Option<f32>, gpu_c: f32) -> f32 {
    let finite = |x: f32| if x.is_finite() { x.abs() } else { 0.0 };
    let s = &d.stats;
    let magnitude = match rho {
        Some(rho) if d.c < 1.0 || gpu_c < 1.0 => {
            finite(s.ell)
                + finite(math::ln(s.sum))
                + finite(math::ln(s.others_sum))
                + finite(math::log_odds(rho.min(0.0)))
        }
        _ => 0.0,
    };
    rtol_of::<T>() + 32.0 * f32::EPSILON * magnitude
}
