//! The statistics the report is made of: mean and spread over seeds, the Gini coefficient of
//! shifts (paper Figure 3f), percentile bins of token shifts against a reference method
//! (paper Figure 4), and the collapse rule.

/// Mean and sample standard deviation (`n - 1` in the denominator; 0 for a single value).
/// `None` for no values.
pub fn mean_std(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() == 1 {
        return Some((mean, 0.0));
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    Some((mean, var.sqrt()))
}

/// The Gini coefficient of the magnitudes `|x_i|`: `sum_i sum_j ||x_i| - |x_j|| / (2 n^2 mean)`,
/// 0 when every magnitude is equal, approaching 1 when one value holds everything. `None` for
/// no values or when every value is 0 (no shift to distribute).
pub fn gini(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().map(|x| x.abs()).collect();
    let total: f64 = v.iter().sum();
    if v.is_empty() || total <= 0.0 || !total.is_finite() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    // With ascending values and 1-based ranks i: G = 2 sum_i i x_(i) / (n sum x) - (n + 1) / n.
    let n = v.len() as f64;
    let ranked: f64 = v.iter().enumerate().map(|(i, x)| (i + 1) as f64 * x).sum();
    Some(2.0 * ranked / (n * total) - (n + 1.0) / n)
}

/// The value at quantile `q` in `[0, 1]` of sorted, non-empty `v` (linear interpolation between ranks).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// The `bins - 1` interior edges that cut `xs` into `bins` equally populated bins (paper
/// Figure 4 uses 10 on DPO's token-level shifts). `None` for no values or fewer than 2 bins.
pub fn percentile_edges(xs: &[f64], bins: usize) -> Option<Vec<f64>> {
    if xs.is_empty() || bins < 2 {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some(
        (1..bins)
            .map(|k| quantile(&v, k as f64 / bins as f64))
            .collect(),
    )
}

/// The fraction of `xs` in each bin cut by ascending `edges`: bin `k` holds
/// `edges[k-1] < x <= edges[k]` (the first bin is open below, the last open above).
pub fn bin_fractions(xs: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0usize; edges.len() + 1];
    for &x in xs {
        counts[edges.partition_point(|&e| e < x)] += 1;
    }
    let n = xs.len().max(1) as f64;
    counts.iter().map(|&c| c as f64 / n).collect()
}

/// The collapse rule (stated in the report): a run has collapsed at the first probe where the
/// held-out *preferred* responses have become, on average, more than `e^max_drop` times less
/// likely than under the reference model (their mean `log pi(y) - log pi_ref(y)` is below
/// `-max_drop`), or where anything measured is not finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CollapseRule {
    /// Largest allowed drop of the preferred responses' log-likelihood, in nats.
    pub max_drop: f64,
}

impl CollapseRule {
    /// The rule the experiment uses: the preferred responses may lose at most a factor `e`.
    pub const DEFAULT: CollapseRule = CollapseRule { max_drop: 1.0 };

    /// The first step at which the curve `(step, mean chosen log-likelihood shift)` collapses.
    pub fn collapse_step(&self, curve: &[(usize, f64)]) -> Option<usize> {
        curve
            .iter()
            .find(|(_, shift)| !shift.is_finite() || *shift < -self.max_drop)
            .map(|&(step, _)| step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn gini_matches_hand_computed_values() {
        // Equal values: no inequality.
        assert!(close(gini(&[2.0, 2.0, 2.0, 2.0]).unwrap(), 0.0));
        // One of four holds everything: sum |xi - xj| = 6, 2 n^2 mean = 2 * 16 * 0.25 = 8.
        assert!(close(gini(&[0.0, 0.0, 0.0, 1.0]).unwrap(), 0.75));
        // 1, 2, 3: ordered pair differences 1, 2, 1 -> sum over all (i, j) = 8;
        // 2 n^2 mean = 2 * 9 * 2 = 36 -> 8 / 36.
        assert!(close(gini(&[3.0, 1.0, 2.0]).unwrap(), 8.0 / 36.0));
        // Magnitudes: signs do not matter, order does not matter.
        assert!(close(gini(&[-3.0, 1.0, -2.0]).unwrap(), 8.0 / 36.0));
        // 1 and 3: |1 - 3| * 2 = 4; 2 * 4 * 2 = 16 -> 0.25.
        assert!(close(gini(&[1.0, 3.0]).unwrap(), 0.25));
        assert_eq!(gini(&[]), None);
        assert_eq!(gini(&[0.0, 0.0]), None);
    }

    #[test]
    fn mean_and_spread() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(close(m, 2.5));
        // Sample variance: (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
        assert!(close(s, (5.0f64 / 3.0).sqrt()));
        assert_eq!(mean_std(&[7.0]), Some((7.0, 0.0)));
        assert_eq!(mean_std(&[]), None);
    }

    #[test]
    fn percentile_bins_split_the_reference_evenly() {
        let xs: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let edges = percentile_edges(&xs, 10).unwrap();
        assert_eq!(edges.len(), 9);
        // Quantile 0.1 of 0..=99 at rank 9.9.
        assert!(close(edges[0], 9.9));
        let own = bin_fractions(&xs, &edges);
        assert!(own.iter().all(|&f| close(f, 0.1)), "{own:?}");
        // A method whose shifts all lie below the lowest edge puts everything in bin 0.
        let low = bin_fractions(&[-5.0, -1.0, 3.0], &edges);
        assert!(close(low[0], 1.0));
        let high = bin_fractions(&[200.0, 99.0], &edges);
        assert!(close(high[9], 1.0));
        assert_eq!(percentile_edges(&[], 10), None);
        assert_eq!(percentile_edges(&xs, 1), None);
    }

    #[test]
    fn collapse_is_detected_on_synthetic_curves() {
        let rule = CollapseRule::DEFAULT;
        // Stable: small wiggles around the reference.
        let stable: Vec<(usize, f64)> =
            (0..10).map(|i| (i * 10, 0.05 * (i as f64).sin())).collect();
        assert_eq!(rule.collapse_step(&stable), None);
        // Falling 0.3 nats per probe: below -1 at the fourth probe (-1.2 at step 40).
        let falling: Vec<(usize, f64)> = (0..10).map(|i| (i * 10, -0.3 * i as f64)).collect();
        assert_eq!(rule.collapse_step(&falling), Some(40));
        // Exactly at the threshold is not a collapse; just past it is.
        assert_eq!(rule.collapse_step(&[(5, -1.0)]), None);
        assert_eq!(rule.collapse_step(&[(5, -1.0001)]), Some(5));
        // A non-finite value collapses at once.
        assert_eq!(rule.collapse_step(&[(1, 0.0), (2, f64::NAN)]), Some(2));
        assert_eq!(rule.collapse_step(&[(3, f64::NEG_INFINITY)]), Some(3));
        // A rising preferred likelihood never collapses.
        let rising: Vec<(usize, f64)> = (0..10).map(|i| (i, 0.2 * i as f64)).collect();
        assert_eq!(rule.collapse_step(&rising), None);
    }
}
