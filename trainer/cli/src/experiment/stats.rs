//! Paired comparisons over seeds: every method of a seed starts from that seed's reference model,
//! so a method is compared with BNF seed by seed (the per-seed difference), and the uncertainty
//! of the mean difference is a percentile bootstrap interval over seeds.

use super::metrics::quantile;
use bnf_trainer::rng::Rng;

/// Resamples of every bootstrap interval.
pub const RESAMPLES: usize = 4000;
/// Coverage of every bootstrap interval.
pub const LEVEL: f64 = 0.95;
/// Seed of the resampling (fixed: the report is reproducible).
const BOOT_SEED: u64 = 18;

/// A mean with its bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Mean of the values.
    pub mean: f64,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
    /// Values it rests on.
    pub n: usize,
}

impl Interval {
    /// `+1` if the whole interval is above 0, `-1` if below, `0` if it contains 0.
    pub fn sign(&self) -> i32 {
        if self.lo > 0.0 {
            1
        } else if self.hi < 0.0 {
            -1
        } else {
            0
        }
    }
}

/// `a[s] - b[s]` for every seed `s` where both were measured.
pub fn paired(a: &[Option<f64>], b: &[Option<f64>]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter_map(|(x, y)| Some((*x)? - (*y)?))
        .collect()
}

/// The mean of `xs` with its percentile bootstrap interval of coverage `level` from
/// `resamples` resamples (with replacement, `xs.len()` values each) drawn from `Rng::new(seed)`.
/// `None` for no values or a non-finite one.
pub fn bootstrap_mean(xs: &[f64], level: f64, resamples: usize, seed: u64) -> Option<Interval> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let mut rng = Rng::new(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| xs[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some(Interval {
        mean,
        lo: quantile(&means, tail),
        hi: quantile(&means, 1.0 - tail),
        n,
    })
}

/// [`bootstrap_mean`] with the report's settings.
pub fn interval(xs: &[f64]) -> Option<Interval> {
    bootstrap_mean(xs, LEVEL, RESAMPLES, BOOT_SEED)
}

/// `mean [lo, hi]` scaled by `scale`, with `digits` decimals; `n/a` for none.
pub fn show(x: Option<Interval>, scale: f64, digits: usize) -> String {
    x.map_or("n/a".into(), |i| {
        format!(
            "{:+.d$} [{:+.d$}, {:+.d$}]",
            scale * i.mean,
            scale * i.lo,
            scale * i.hi,
            d = digits
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_only_seeds_measured_on_both_sides() {
        let a = [Some(1.0), None, Some(3.0), Some(5.0)];
        let b = [Some(0.5), Some(2.0), None, Some(7.0)];
        assert_eq!(paired(&a, &b), vec![0.5, -2.0]);
        assert!(paired(&[], &b).is_empty());
    }

    /// Every one of the `n^n` equally likely resamples, enumerated: the exact bootstrap
    /// distribution of the mean.
    fn exact_means(xs: &[f64]) -> Vec<f64> {
        let n = xs.len();
        let mut out = Vec::new();
        for code in 0..n.pow(n as u32) {
            let (mut c, mut sum) = (code, 0.0);
            for _ in 0..n {
                sum += xs[c % n];
                c /= n;
            }
            out.push(sum / n as f64);
        }
        out.sort_by(f64::total_cmp);
        out
    }

    #[test]
    fn bootstrap_interval_matches_exact_enumeration() {
        let xs = [0.3, -1.2, 2.5, 0.8, 1.1];
        let exact = exact_means(&xs);
        // Exact 2.5% and 97.5% points of the 3125 resample means, by their ranks.
        let lo = exact[(0.025 * exact.len() as f64) as usize];
        let hi = exact[(0.975 * exact.len() as f64) as usize];
        let b = bootstrap_mean(&xs, 0.95, 200_000, 7).unwrap();
        assert!((b.mean - 0.7).abs() < 1e-12);
        assert!((b.lo - lo).abs() < 0.03, "{} vs {lo}", b.lo);
        assert!((b.hi - hi).abs() < 0.03, "{} vs {hi}", b.hi);
        assert_eq!(b.n, 5);
    }

    #[test]
    fn bootstrap_edge_cases() {
        // Two values: the resample mean is x1, the midpoint or x2 with chances 1/4, 1/2, 1/4,
        // so the 95% interval runs from x1 to x2.
        let b = bootstrap_mean(&[1.0, 3.0], 0.95, 10_000, 1).unwrap();
        assert_eq!((b.lo, b.hi, b.mean), (1.0, 3.0, 2.0));
        // Equal values: no spread.
        let c = bootstrap_mean(&[0.4; 5], 0.95, 100, 1).unwrap();
        assert!((c.lo - 0.4).abs() < 1e-12 && (c.hi - 0.4).abs() < 1e-12);
        assert_eq!(c.sign(), 1);
        assert_eq!(bootstrap_mean(&[], 0.95, 100, 1), None);
        assert_eq!(bootstrap_mean(&[1.0, f64::NAN], 0.95, 100, 1), None);
        // All differences positive but one: the interval may straddle 0.
        let d = interval(&[0.5, 0.4, 0.6, -3.0, 0.5]).unwrap();
        assert_eq!(d.sign(), 0);
        assert_eq!(
            interval(&[-0.5, -0.4, -0.6, -0.2, -0.5]).unwrap().sign(),
            -1
        );
        assert_eq!(show(Some(d), 100.0, 1).matches('[').count(), 1);
    }
}
