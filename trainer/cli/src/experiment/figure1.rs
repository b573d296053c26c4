//! The paper's Figure 1: `|dL/dz_y|` against `pi_y` for NLL, PLL and BNF, each point computed by
//! `bnf-core` on a constructed row whose target probability is exactly `pi_y`.

use bnf_core::{forward_backward, Batch, RowDiag, RowLoss, DISPREFERRED, PREFERRED};

/// Vocabulary of the constructed rows (the target plus tokens sharing the remaining mass).
const VOCAB: usize = 8;

/// One curve of the figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// `(pi_y, |dL/dz_y|)`.
    pub points: Vec<(f64, f64)>,
}

/// `|dL/dz_y|` from `bnf-core` for one row with `pi_y = p`, row weight `label` (one response
/// of one token) and, for BNF, `pi_ref = p_ref`.
pub fn target_grad(p: f64, label: f32, p_ref: Option<f64>) -> Result<f64, String> {
    let y = 0usize;
    let mut z = vec![((1.0 - p) / (VOCAB - 1) as f64).ln() as f32; VOCAB];
    z[y] = p.ln() as f32;
    let rho = [p_ref.map_or(0.0, |r| r.ln() as f32)];
    let loss = match p_ref {
        Some(_) => RowLoss::Bnf { ref_logp: &rho },
        None => RowLoss::Nll,
    };
    let batch = Batch {
        vocab: VOCAB,
        targets: &[y as u32],
        weights: &[label],
        scored: None,
        num_responses: 1,
    };
    let mut grad = vec![0.0f32; VOCAB];
    let mut diag = [RowDiag::default()];
    forward_backward(&z, &batch, loss, &mut grad, &mut diag).map_err(|e| e.to_string())?;
    Ok(grad[y].abs() as f64)
}

/// The curves: NLL on a preferred token, PLL (NLL with label -1) on a dispreferred one, and
/// BNF on either with `pi_ref` = 0.3 and 0.7, over `points` values of `pi_y` in (0, 1).
pub fn curves(points: usize) -> Result<Vec<Curve>, String> {
    let grid: Vec<f64> = (1..=points)
        .map(|i| i as f64 / (points + 1) as f64)
        .collect();
    let specs: [(&str, f32, Option<f64>); 6] = [
        ("NLL (preferred)", PREFERRED, None),
        ("PLL (dispreferred)", DISPREFERRED, None),
        ("BNF preferred, pi_ref 0.3", PREFERRED, Some(0.3)),
        ("BNF dispreferred, pi_ref 0.3", DISPREFERRED, Some(0.3)),
        ("BNF preferred, pi_ref 0.7", PREFERRED, Some(0.7)),
        ("BNF dispreferred, pi_ref 0.7", DISPREFERRED, Some(0.7)),
    ];
    specs
        .iter()
        .map(|&(label, l, r)| {
            let pts = grid
                .iter()
                .map(|&p| Ok((p, target_grad(p, l, r)?)))
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Curve {
                label: label.into(),
                points: pts,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paper's eq. 9 and appendix A.1, written out independently of `bnf-core`.
    fn eq9(p: f64, p_ref: Option<f64>) -> f64 {
        match p_ref {
            Some(r) if p < r => p * (1.0 - r) / r,
            _ => 1.0 - p,
        }
    }

    #[test]
    fn core_gradients_follow_eq9() {
        for c in curves(49).unwrap() {
            let p_ref = if c.label.contains("0.3") {
                Some(0.3)
            } else if c.label.contains("0.7") {
                Some(0.7)
            } else {
                None
            };
            for &(p, g) in &c.points {
                assert!((g - eq9(p, p_ref)).abs() < 1e-4, "{}: p {p}: {g}", c.label);
            }
        }
        // BNF's gradient peaks at pi_ref and falls on both sides: the bidirectional feedback.
        let at = |p: f64| target_grad(p, DISPREFERRED, Some(0.5)).unwrap();
        assert!(at(0.5) > at(0.3) && at(0.5) > at(0.7));
        assert!(at(0.01) < 0.02);
        // PLL's grows as the dispreferred token's probability falls: the positive feedback.
        let pll = |p: f64| target_grad(p, DISPREFERRED, None).unwrap();
        assert!(pll(0.01) > pll(0.5));
    }
}
