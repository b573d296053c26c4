//! AdamW, the cosine learning-rate schedule with linear warm-up, and gradient clipping.

use crate::model::params::is_decayed;
use crate::names::Names;
use serde::{Deserialize, Serialize};

/// AdamW hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator guard.
    pub eps: f32,
    /// Decoupled weight decay (applied to matrices only).
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamWConfig {
    /// Check the hyperparameters: moment decays in [0, 1), a finite guard above 0 and a finite
    /// weight decay of at least 0. The message names the value (the weight decay as `names`
    /// does) and gives it.
    pub fn validate(&self, names: Names) -> Result<(), String> {
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "training: {} {} must be a finite number of at least 0 (0: no decay)",
                names.of("weight_decay"),
                self.weight_decay
            ));
        }
        for (name, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(format!("AdamW: {name} = {v} must be in [0, 1)"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(format!(
                "AdamW: eps = {} must be a finite number above 0",
                self.eps
            ));
        }
        Ok(())
    }
}

/// AdamW state: moments in the parameters' layout and the step count.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamW {
    /// Hyperparameters.
    pub config: AdamWConfig,
    /// First moments.
    pub m: Vec<f32>,
    /// Second moments.
    pub v: Vec<f32>,
    /// Updates taken so far.
    pub t: u64,
    /// Whether each parameter element is weight-decayed.
    decay: Vec<bool>,
}

impl AdamW {
    /// Fresh state for parameters laid out as `names`/`sizes`.
    pub fn new(config: AdamWConfig, names: &[&str], sizes: &[usize]) -> Self {
        let n = sizes.iter().sum();
        let decay = names
            .iter()
            .zip(sizes)
            .flat_map(|(name, &s)| std::iter::repeat_n(is_decayed(name), s))
            .collect();
        AdamW {
            config,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            decay,
        }
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32) {
        self.t += 1;
        let c = self.config;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for i in 0..params.len() {
            let g = grads[i];
            self.m[i] = c.beta1 * self.m[i] + (1.0 - c.beta1) * g;
            self.v[i] = c.beta2 * self.v[i] + (1.0 - c.beta2) * g * g;
            let mhat = self.m[i] / bc1;
            let vhat = self.v[i] / bc2;
            let wd = if self.decay[i] { c.weight_decay } else { 0.0 };
            params[i] -= lr * (mhat / (vhat.sqrt() + c.eps) + wd * params[i]);
        }
    }
}

/// Learning rate at `step` (0-based) of `total`: linear warm-up over the first 10% of steps,
/// then a cosine decay from `base` to `base / 10`.
pub fn cosine_lr(step: usize, total: usize, base: f32) -> f32 {
    let warmup = total.div_ceil(10).max(1);
    if step < warmup {
        return base * (step + 1) as f32 / warmup as f32;
    }
    let span = (total - warmup).max(1) as f32;
    let progress = ((step - warmup) as f32 / span).min(1.0);
    let min = base / 10.0;
    min + 0.5 * (base - min) * (1.0 + (std::f32::consts::PI * progress).cos())
}

/// Scale `grads` so their global L2 norm is at most `max_norm` (no-op if `max_norm <= 0`).
/// Returns the norm before clipping (summed in f64, in order).
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> f32 {
    let norm = grads
        .iter()
        .map(|&g| g as f64 * g as f64)
        .sum::<f64>()
        .sqrt() as f32;
    if max_norm > 0.0 && norm > max_norm {
        let s = max_norm / norm;
        for g in grads.iter_mut() {
            *g *= s;
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        let total = 100;
        assert!(cosine_lr(0, total, 1.0) < cosine_lr(5, total, 1.0));
        assert!((cosine_lr(9, total, 1.0) - 1.0).abs() < 1e-6);
        assert!((cosine_lr(10, total, 1.0) - 1.0).abs() < 1e-6);
        assert!(cosine_lr(50, total, 1.0) < cosine_lr(20, total, 1.0));
        assert!((cosine_lr(99, total, 1.0) - 0.1).abs() < 1e-3);
    }

    #[test]
    fn clipping_bounds_the_norm() {
        let mut g = vec![3.0f32, 4.0];
        assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
        assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
        let mut h = vec![0.3f32, 0.4];
        clip_grad_norm(&mut h, 1.0);
        assert_eq!(h, vec![0.3, 0.4]);
    }

    #[test]
    fn adamw_moves_against_the_gradient() {
        let mut opt = AdamW::new(AdamWConfig::default(), &["wte", "lnfb"], &[1, 1]);
        let mut p = vec![1.0f32, 1.0];
        opt.step(&mut p, &[0.5, -0.5], 0.1);
        assert!(p[0] < 1.0 && p[1] > 1.0);
        // The first bias-corrected step has size lr for each coordinate.
        assert!((p[0] - 0.9).abs() < 1e-5 && (p[1] - 1.1).abs() < 1e-5);
    }
}
