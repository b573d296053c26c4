//! The paper's formulas, written as literally as possible in `f64`, with no shared code with
//! `bnf-core`. Eq. 6 materialises the target distribution, eq. 4 sums `f log pi`, eq. 8 is
//! `s (pi - f)`.

/// `softmax(z)` in `f64` (max-shifted).
pub fn softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// `log softmax(z)` in `f64`.
pub fn log_softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// Eq. 6: the dynamic target distribution for logits `z`, target `y` and reference log-prob
/// `rho = log pi_ref(y)`. The ratio `pi_y / pi_ref` is taken as `e^(log pi_y - rho)` from
/// `log_softmax`, so that it survives probabilities that underflow f64 (`e^-1e4`).
pub fn dynamic_target(z: &[f64], y: usize, rho: f64) -> Vec<f64> {
    let lp = log_softmax(z);
    let pi: Vec<f64> = lp.iter().map(|l| l.exp()).collect();
    let f_y = if rho == f64::NEG_INFINITY {
        1.0
    } else {
        (lp[y] - rho).exp().min(1.0)
    };
    let rest: f64 = pi
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != y)
        .map(|(_, p)| p)
        .sum();
    pi.iter()
        .enumerate()
        .map(|(j, &p)| {
            if j == y {
                f_y
            } else if rest > 0.0 {
                (1.0 - f_y) / rest * p
            } else {
                0.0
            }
        })
        .collect()
}

/// Eq. 8's gradient scale `c = min(1, odds(pi_y) / odds(pi_ref))`, with `pi_y` from
/// [`log_softmax`] and `pi_ref = e^rho`, in log space: `log odds(q) = log q - log(1 - q)`, with
/// `log(1 - q) = ln(-expm1(log q))`. `pi_y = 1` (`V = 1`) gives 1, `pi_ref = 1` gives 0 and
/// `rho = -inf` gives 1.
pub fn gradient_scale(z: &[f64], y: usize, rho: f64) -> f64 {
    let ell = log_softmax(z)[y];
    if ell >= 0.0 {
        return 1.0;
    }
    let log_odds = |l: f64| l - (-l.exp_m1()).ln();
    (log_odds(ell) - log_odds(rho)).min(0.0).exp()
}

/// Eq. 4 for one row with `f` frozen: `-s * sum_j f_j log pi_j(z)`.
pub fn row_loss_frozen(z: &[f64], f: &[f64], s: f64) -> f64 {
    let lp = log_softmax(z);
    -s * f
        .iter()
        .zip(&lp)
        .map(|(fj, l)| if *fj == 0.0 { 0.0 } else { fj * l })
        .sum::<f64>()
}

/// One row's BNF loss: `f` from eq. 6 at the current `z`, then eq. 4.
pub fn bnf_row_loss(z: &[f64], y: usize, rho: f64, s: f64) -> f64 {
    let f = dynamic_target(z, y, rho);
    row_loss_frozen(z, &f, s)
}

/// Eq. 8: `s * (pi - f)`.
pub fn bnf_row_grad(z: &[f64], y: usize, rho: f64, s: f64) -> Vec<f64> {
    let pi = softmax(z);
    let f = dynamic_target(z, y, rho);
    pi.iter().zip(&f).map(|(p, fj)| s * (p - fj)).collect()
}

/// Central finite differences of `loss` at `z` with step `h`.
pub fn central_diff(z: &[f64], h: f64, loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut zz = z.to_vec();
    (0..z.len())
        .map(|k| {
            let x = zz[k];
            zz[k] = x + h;
            let up = loss(&zz);
            zz[k] = x - h;
            let down = loss(&zz);
            zz[k] = x;
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// Eq. 9: `|dL/dz_y|` for weight `s`, piecewise in `pi_y` against `pi_ref`.
pub fn eq9_target_magnitude(pi_y: f64, pi_ref: f64, s: f64) -> f64 {
    s.abs()
        * if pi_y < pi_ref {
            pi_y * (1.0 - pi_ref) / pi_ref
        } else {
            1.0 - pi_y
        }
}
