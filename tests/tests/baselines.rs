//! The baseline objectives against `losses.md`, through an independent `f64` oracle
//! (`bnf_tests::seq_oracle`): loss values on fixed vectors, scalar derivatives and token-level
//! gradients against central finite differences, the paper's Table 2 view of DPO, BNF and NLL
//! through the objective API against the row-local path, and numerics at the edges.
use bnf_core::seq::{self, PairInput, PairLoss};
use bnf_core::{
    bf16, objective_forward, objective_forward_backward, objective_forward_backward_in_place,
    response_weights, row_stats, Batch, BnfError, KtoConfig, Logit, Objective, PrefBatch, RowDiag,
    RowLoss, OBJECTIVE_NAMES,
};
use bnf_tests::oracle::{self, central_diff, softmax};
use bnf_tests::seq_oracle::{self, logsig, sigma, Batch64, Pair64};
use proptest::prelude::*;

/// Every objective with its default configuration.
fn all_objectives() -> Vec<Objective> {
    OBJECTIVE_NAMES
        .iter()
        .map(|n| Objective::parse(n).expect("listed name parses"))
        .collect()
}

fn pairwise() -> Vec<Objective> {
    all_objectives()
        .into_iter()
        .filter(|o| o.needs_pairs())
        .collect()
}

/// Core's scalar function for a pairwise objective.
fn core_pair(obj: &Objective, p: &PairInput) -> PairLoss {
    seq::pair_loss(obj, p).expect("a pairwise objective")
}

fn to64(p: &PairInput) -> Pair64 {
    Pair64 {
        lp_w: p.lp_w as f64,
        lp_l: p.lp_l as f64,
        rp_w: p.rp_w as f64,
        rp_l: p.rp_l as f64,
        len_w: p.len_w as f64,
        len_l: p.len_l as f64,
    }
}

fn close(got: f64, want: f64, abs: f64, rel: f64) -> bool {
    (got - want).abs() <= abs + rel * want.abs()
}

/// A generated batch: responses of 1-3 scored rows after 0-1 masked prompt rows, grouped in
/// pairs (chosen first or second at random), with reference log-probs per row.
#[derive(Clone, Debug)]
struct Case {
    vocab: usize,
    logits: Vec<f32>,
    targets: Vec<u32>,
    scored: Vec<bool>,
    offsets: Vec<usize>,
    labels: Vec<f32>,
    pairs: Vec<[usize; 2]>,
    ref_logp: Vec<f32>,
}

impl Case {
    fn batch(&self) -> PrefBatch<'_> {
        PrefBatch {
            vocab: self.vocab,
            targets: &self.targets,
            scored: Some(&self.scored),
            offsets: &self.offsets,
            labels: &self.labels,
            pairs: Some(&self.pairs),
            ref_logp: Some(&self.ref_logp),
        }
    }

    fn oracle<'a>(&'a self, ref64: &'a [f64]) -> Batch64<'a> {
        Batch64 {
            vocab: self.vocab,
            targets: &self.targets,
            scored: Some(&self.scored),
            offsets: &self.offsets,
            labels: &self.labels,
            pairs: &self.pairs,
            ref_logp: ref64,
        }
    }

    fn ref64(&self) -> Vec<f64> {
        self.ref_logp.iter().map(|&v| v as f64).collect()
    }

    fn z64(&self) -> Vec<f64> {
        self.logits.iter().map(|&v| v as f64).collect()
    }
}

/// `(prompt rows, scored rows)` per response and whether each pair lists the rejected first.
fn build(
    vocab: usize,
    shape: &[(usize, usize)],
    swap: &[bool],
    logits: Vec<f32>,
    targets: Vec<u32>,
    ref_logp: Vec<f32>,
) -> Case {
    let mut offsets = vec![0];
    let mut scored = vec![];
    for &(prompt, len) in shape {
        scored.extend(std::iter::repeat_n(false, prompt));
        scored.extend(std::iter::repeat_n(true, len));
        offsets.push(scored.len());
    }
    let mut labels = vec![];
    let mut pairs = vec![];
    for (k, &swapped) in swap.iter().enumerate().take(shape.len() / 2) {
        let (c, r) = if swapped {
            (2 * k + 1, 2 * k)
        } else {
            (2 * k, 2 * k + 1)
        };
        pairs.push([c, r]);
        labels.extend(if swapped { [-1.0, 1.0] } else { [1.0, -1.0] });
    }
    Case {
        vocab,
        logits,
        targets,
        scored,
        offsets,
        labels,
        pairs,
        ref_logp,
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        2usize..6,
        prop::collection::vec(((0usize..2, 1usize..4), (0usize..2, 1usize..4)), 1..4),
    )
        .prop_flat_map(|(vocab, pair_shapes)| {
            let shape: Vec<(usize, usize)> =
                pair_shapes.iter().flat_map(|&(a, b)| [a, b]).collect();
            let rows: usize = shape.iter().map(|(p, s)| p + s).sum();
            let n_pairs = pair_shapes.len();
            (
                Just(vocab),
                Just(shape),
                prop::collection::vec(any::<bool>(), n_pairs),
                prop::collection::vec(-3.0f32..3.0, rows * vocab),
                prop::collection::vec(0..vocab as u32, rows),
                prop::collection::vec(-4.0f32..-0.05, rows),
            )
        })
        .prop_map(|(vocab, shape, swap, logits, targets, ref_logp)| {
            build(vocab, &shape, &swap, logits, targets, ref_logp)
        })
}

/// The objectives checked against finite differences of the oracle through the logits (all
/// but BNF, whose target distribution is frozen by definition); KTO with a fixed `z0`.
fn differentiable(z0: f32) -> Vec<Objective> {
    all_objectives()
        .into_iter()
        .filter(|o| !matches!(o, Objective::Bnf))
        .map(|o| match o {
            Objective::Kto(c) => Objective::Kto(KtoConfig { z0: Some(z0), ..c }),
            o => o,
        })
        .collect()
}

/// Whether any SLiC-HF pair sits within `eps` of its hinge's kink (finite differences across
/// the kink do not measure a derivative).
fn near_slic_kink(c: &Case, eps: f64) -> bool {
    let ref64 = c.ref64();
    let s = c.oracle(&ref64).sums(&c.z64());
    c.pairs
        .iter()
        .any(|&[w, l]| (1.0 - s[w].0 + s[l].0).abs() < eps)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Each pairwise loss's `d/dlp_w`, `d/dlp_l` against central differences of the `f64`
    /// formula, and its value against the formula.
    #[test]
    fn pair_derivatives_match_finite_differences(
        lp_w in -50.0f32..-0.01, lp_l in -50.0f32..-0.01,
        rp_w in -50.0f32..-0.01, rp_l in -50.0f32..-0.01,
        len_w in 1usize..20, len_l in 1usize..20,
    ) {
        let p = PairInput { lp_w, lp_l, rp_w, rp_l, len_w, len_l };
        let h = 1e-5;
        for obj in pairwise() {
            if matches!(obj, Objective::SlicHf(_)) && (1.0 - lp_w as f64 + lp_l as f64).abs() < 1e-3 {
                continue; // the hinge's kink
            }
            let got = core_pair(&obj, &p);
            let base = to64(&p);
            let f = |dw: f64, dl: f64| seq_oracle::pair_loss(&obj, &Pair64 { lp_w: base.lp_w + dw, lp_l: base.lp_l + dl, ..base });
            let fd_w = (f(h, 0.0) - f(-h, 0.0)) / (2.0 * h);
            let fd_l = (f(0.0, h) - f(0.0, -h)) / (2.0 * h);
            let want = f(0.0, 0.0);
            prop_assert!(close(got.loss as f64, want, 1e-5, 1e-5), "{}: loss {} vs {}", obj.name(), got.loss, want);
            prop_assert!(close(got.d_w as f64, fd_w, 1e-5, 1e-3), "{}: d_w {} vs {}", obj.name(), got.d_w, fd_w);
            prop_assert!(close(got.d_l as f64, fd_l, 1e-5, 1e-3), "{}: d_l {} vs {}", obj.name(), got.d_l, fd_l);
        }
    }

    /// KTO's `d/dlp` (z0 held fixed) against central differences, both sides.
    #[test]
    fn kto_derivative_matches_finite_differences(
        lp in -50.0f32..-0.01, rp in -50.0f32..-0.01, z0 in 0.0f32..5.0, desirable: bool,
    ) {
        let obj = Objective::parse("kto").unwrap();
        let Objective::Kto(cfg) = obj else { unreachable!() };
        let got = seq::kto_loss(lp, rp, desirable, z0, &cfg);
        let f = |d: f64| seq_oracle::kto_loss(&obj, lp as f64 + d, rp as f64, desirable, z0 as f64);
        let h = 1e-5;
        let fd = (f(h) - f(-h)) / (2.0 * h);
        prop_assert!(close(got.loss as f64, f(0.0), 1e-6, 1e-5));
        prop_assert!(close(got.d as f64, fd, 1e-7, 1e-3), "d {} vs {}", got.d, fd);
    }

    /// Token-level gradient of every objective (BNF aside) against central differences of the
    /// oracle's batch loss through the logits; loss and per-response log-probs against the oracle.
    #[test]
    fn token_gradient_matches_finite_differences(c in case(), z0 in 0.0f32..1.0) {
        let ref64 = c.ref64();
        let ob = c.oracle(&ref64);
        let z = c.z64();
        let sums = ob.sums(&z);
        for obj in differentiable(z0) {
            if matches!(obj, Objective::SlicHf(_)) && near_slic_kink(&c, 1e-2) {
                continue;
            }
            let mut grad = vec![0.0f32; c.logits.len()];
            let out = objective_forward_backward(&c.logits, &c.batch(), &obj, &mut grad).unwrap();
            let want = ob.loss(&obj, &z);
            prop_assert!(close(out.loss as f64, want, 1e-5, 1e-5), "{}: loss {} vs {}", obj.name(), out.loss, want);
            for (i, s) in sums.iter().enumerate() {
                prop_assert!(close(out.logp[i] as f64, s.0, 1e-5, 1e-5));
                prop_assert_eq!(out.lengths[i], s.2 as usize);
            }
            let fd = central_diff(&z, 1e-5, |zz| ob.loss(&obj, zz));
            for (k, (g, f)) in grad.iter().zip(&fd).enumerate() {
                prop_assert!(close(*g as f64, *f, 2e-5, 1e-3), "{}: dz[{}] {} vs {}", obj.name(), k, g, f);
            }
        }
    }

    /// The paper's Table 2: DPO's token gradient is `C_DPO (-grad log pi_w + grad log pi_l)`
    /// (over the number of pairs), `C_DPO = beta sigma(beta (rl - cl))`, and
    /// `grad_z log pi(y) = onehot(y) - pi` on each row. With two pairs or more, one more pair
    /// (the first pair's chosen against the second's rejected) puts two responses in two
    /// pairs each, so their rows collect from both.
    #[test]
    fn dpo_token_gradient_is_table_2(mut c in case()) {
        if c.pairs.len() >= 2 {
            let extra = [c.pairs[0][0], c.pairs[1][1]];
            c.pairs.push(extra);
        }
        let obj = Objective::parse("dpo").unwrap();
        let Objective::Dpo(cfg) = obj else { unreachable!() };
        let beta = cfg.beta as f64;
        let mut grad = vec![0.0f32; c.logits.len()];
        objective_forward_backward(&c.logits, &c.batch(), &obj, &mut grad).unwrap();
        let ref64 = c.ref64();
        let z = c.z64();
        let sums = c.oracle(&ref64).sums(&z);
        let n_pairs = c.pairs.len() as f64;
        let v = c.vocab;
        let mut want = vec![0.0f64; z.len()];
        for &[w, l] in &c.pairs {
            let cl = sums[w].0 - sums[w].1;
            let rl = sums[l].0 - sums[l].1;
            let c_dpo = beta * sigma(beta * (rl - cl));
            // -grad log pi_w on the chosen rows, +grad log pi_l on the rejected rows.
            for (resp, sign) in [(w, -1.0), (l, 1.0)] {
                for r in (c.offsets[resp]..c.offsets[resp + 1]).filter(|&r| c.scored[r]) {
                    let pi = softmax(&z[r * v..(r + 1) * v]);
                    for j in 0..v {
                        let onehot = if j == c.targets[r] as usize { 1.0 } else { 0.0 };
                        want[r * v + j] += c_dpo / n_pairs * sign * (onehot - pi[j]);
                    }
                }
            }
        }
        for (k, (g, w)) in grad.iter().zip(&want).enumerate() {
            prop_assert!(close(*g as f64, *w, 1e-7, 1e-4), "dz[{}] {} vs {}", k, g, w);
        }
    }

    /// BNF and NLL through the objective API are the row-local path, bit for bit; BNF's
    /// gradient is the oracle's eq. 8 over the number of responses.
    #[test]
    fn bnf_and_nll_run_the_row_local_path(c in case()) {
        let mut weights = vec![0.0f32; c.targets.len()];
        let n = response_weights(&c.offsets, &c.labels, Some(&c.scored), &mut weights).unwrap();
        let b = Batch { vocab: c.vocab, targets: &c.targets, weights: &weights, scored: Some(&c.scored), num_responses: n };
        for (obj, loss) in [(Objective::Bnf, RowLoss::Bnf { ref_logp: &c.ref_logp }), (Objective::Nll, RowLoss::Nll)] {
            let mut g1 = vec![0.0f32; c.logits.len()];
            let mut diag = vec![RowDiag::default(); c.targets.len()];
            let l1 = bnf_core::forward_backward(&c.logits, &b, loss, &mut g1, &mut diag).unwrap();
            let mut g2 = vec![0.0f32; c.logits.len()];
            let out = objective_forward_backward(&c.logits, &c.batch(), &obj, &mut g2).unwrap();
            prop_assert_eq!(l1.to_bits(), out.loss.to_bits());
            prop_assert_eq!(&g1, &g2);
        }
        let mut grad = vec![0.0f32; c.logits.len()];
        objective_forward_backward(&c.logits, &c.batch(), &Objective::Bnf, &mut grad).unwrap();
        let z = c.z64();
        let v = c.vocab;
        for r in 0..c.targets.len() {
            let s = weights[r] as f64;
            let want = if c.scored[r] {
                oracle::bnf_row_grad(&z[r * v..(r + 1) * v], c.targets[r] as usize, c.ref_logp[r] as f64, s)
            } else {
                vec![0.0; v]
            };
            for j in 0..v {
                prop_assert!(close(grad[r * v + j] as f64, want[j] / n as f64, 1e-6, 1e-4));
            }
        }
    }

    /// For every objective: in place and into a buffer give the same bits, and the loss-only
    /// call gives the same loss.
    #[test]
    fn in_place_and_forward_agree(c in case()) {
        for obj in all_objectives() {
            let mut grad = vec![0.0f32; c.logits.len()];
            let a = objective_forward_backward(&c.logits, &c.batch(), &obj, &mut grad).unwrap();
            let mut z = c.logits.clone();
            let b = objective_forward_backward_in_place(&mut z, &c.batch(), &obj).unwrap();
            let f = objective_forward(&c.logits, &c.batch(), &obj).unwrap();
            prop_assert_eq!(&grad, &z, "{}", obj.name());
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.loss.to_bits(), f.loss.to_bits());
            prop_assert_eq!(&a.row_weight, &f.row_weight);
        }
    }

    /// The sequence path's steps 2-3 from row statistics computed elsewhere
    /// (`forward_from_stats`) and from per-response sums (`seq::sequence_loss`) give the
    /// batch functions' results bit for bit.
    #[test]
    fn sequence_steps_alone_agree(c in case()) {
        let pb = c.batch();
        let stats: Vec<_> = (0..pb.rows())
            .map(|r| {
                let z = &c.logits[r * pb.vocab..(r + 1) * pb.vocab];
                row_stats(z, pb.targets[r] as usize).unwrap_or_default()
            })
            .collect();
        for obj in all_objectives() {
            let want = objective_forward(&c.logits, &pb, &obj).unwrap();
            if matches!(obj, Objective::Bnf | Objective::Nll) {
                prop_assert!(bnf_core::forward_from_stats(&pb, &obj, &stats).is_err());
                continue;
            }
            let got = bnf_core::forward_from_stats(&pb, &obj, &stats).unwrap();
            prop_assert_eq!(&got, &want, "{}", obj.name());
            let s = seq::sequence_loss(&obj, &seq::SeqInputs {
                logp: &want.logp,
                ref_logp: &want.ref_logp,
                lengths: &want.lengths,
                labels: pb.labels,
                pairs: pb.pairs.unwrap_or(&[]),
            }).unwrap();
            prop_assert_eq!(s.loss.to_bits(), want.loss.to_bits());
            prop_assert_eq!(&s.terms, &want.terms);
            prop_assert_eq!(&s.dloss_dlogp, &want.dloss_dlogp);
            prop_assert_eq!(s.kl_estimate, want.kl_estimate);
            // Per term: the same losses, each reading its pair (or its own response), and
            // the derivatives that, collected, are the batch's dloss/dlp.
            let inputs = seq::SeqInputs {
                logp: &want.logp,
                ref_logp: &want.ref_logp,
                lengths: &want.lengths,
                labels: pb.labels,
                pairs: pb.pairs.unwrap_or(&[]),
            };
            let t = seq::sequence_terms(&obj, &inputs).unwrap();
            prop_assert_eq!(t.kl_estimate, want.kl_estimate);
            let losses: Vec<f32> = t.terms.iter().map(|t| t.loss).collect();
            prop_assert_eq!(&losses, &want.terms);
            let mut g = vec![0.0f64; want.logp.len()];
            for (j, term) in t.terms.iter().enumerate() {
                let reads = match obj {
                    Objective::Kto(_) => [j, j],
                    _ => pb.pairs.unwrap()[j],
                };
                prop_assert_eq!(term.responses, reads);
                for k in 0..2 {
                    g[term.responses[k]] += term.d[k] as f64 / t.terms.len() as f64;
                }
            }
            for (i, (&a, &b)) in g.iter().zip(&want.dloss_dlogp).enumerate() {
                prop_assert!((a as f32 - b).abs() <= 1e-6 * (1.0 + b.abs()), "{} response {i}: {a} vs {b}", obj.name());
            }
        }
    }
}

/// `seq::sequence_loss` checks its inputs like the batch functions do.
#[test]
fn sequence_loss_rejects_bad_inputs() {
    let dpo = Objective::parse("dpo").unwrap();
    let ok = seq::SeqInputs {
        logp: &[-3.0, -4.0],
        ref_logp: &[-3.5, -3.5],
        lengths: &[2, 3],
        labels: &[1.0, -1.0],
        pairs: &[[0, 1]],
    };
    assert!(seq::sequence_loss(&dpo, &ok).is_ok());
    let err = |s: seq::SeqInputs<'_>, obj: &Objective| seq::sequence_loss(obj, &s).unwrap_err();
    assert!(matches!(
        err(
            seq::SeqInputs {
                ref_logp: &[],
                ..ok
            },
            &dpo
        ),
        BnfError::MissingReference { objective: "dpo" }
    ));
    assert!(matches!(
        err(
            seq::SeqInputs {
                lengths: &[2],
                ..ok
            },
            &dpo
        ),
        BnfError::LengthMismatch {
            what: "lengths",
            expected: 2,
            found: 1
        }
    ));
    assert!(matches!(
        err(
            seq::SeqInputs {
                lengths: &[2, 0],
                ..ok
            },
            &dpo
        ),
        BnfError::EmptyResponse { response: 1 }
    ));
    assert!(matches!(
        err(seq::SeqInputs { pairs: &[], ..ok }, &dpo),
        BnfError::MissingPairs { .. }
    ));
    assert!(matches!(
        err(
            seq::SeqInputs {
                pairs: &[[0, 2]],
                ..ok
            },
            &dpo
        ),
        BnfError::InvalidPair { pair: 0, .. }
    ));
    assert!(matches!(
        err(
            seq::SeqInputs {
                logp: &[-3.0, f32::NAN],
                ..ok
            },
            &dpo
        ),
        BnfError::InvalidLabel { response: 1, .. }
    ));
    let kto = Objective::parse("kto").unwrap();
    assert!(matches!(
        err(seq::SeqInputs { labels: &[1.0, 0.0], pairs: &[], ..ok }, &kto),
        BnfError::InvalidLabel { response: 1, value } if value == 0.0
    ));
    assert!(matches!(
        err(ok, &Objective::Bnf),
        BnfError::InvalidConfig {
            objective: "bnf",
            ..
        }
    ));
}

/// A fixed batch: vocab 4, two pairs (the second listed rejected-first), prompt rows masked.
fn fixed_case() -> Case {
    let logits = vec![
        0.5, -1.0, 2.0, 0.0, // prompt (masked)
        1.0, 2.0, 0.5, -1.0, // response 0
        2.0, 0.0, 0.0, 1.0, //
        0.0, 0.0, 3.0, 1.0, // response 1
        -2.0, 1.0, 1.0, 0.0, // response 2
        0.3, 0.1, -0.4, 2.2, //
        1.5, -0.5, 0.0, 0.7, //
        0.0, 1.0, 0.0, -1.0, // response 3
    ];
    let targets = vec![0, 1, 0, 2, 1, 3, 0, 1];
    let ref_logp = vec![-9.0, -0.9, -0.5, -0.4, -1.2, -0.8, -2.5, -1.1];
    build(
        4,
        &[(1, 2), (0, 1), (0, 3), (0, 1)],
        &[false, true],
        logits,
        targets,
        ref_logp,
    )
}

#[test]
fn every_loss_equals_its_formula_on_a_fixed_batch() {
    let c = fixed_case();
    let ref64 = c.ref64();
    let ob = c.oracle(&ref64);
    let z = c.z64();
    for obj in differentiable(0.25) {
        let out = objective_forward(&c.logits, &c.batch(), &obj).unwrap();
        let want = ob.loss(&obj, &z);
        assert!(
            close(out.loss as f64, want, 1e-6, 1e-5),
            "{}: {} vs {}",
            obj.name(),
            out.loss,
            want
        );
    }
    // KTO's own z0 estimate: max(0, mean log-ratio), here positive (reference sums are low).
    let sums = ob.sums(&z);
    let mean: f64 = sums.iter().map(|s| s.0 - s.1).sum::<f64>() / sums.len() as f64;
    let out = objective_forward(&c.logits, &c.batch(), &Objective::parse("kto").unwrap()).unwrap();
    let z0 = out.kl_estimate.unwrap() as f64;
    assert!(close(z0, mean.max(0.0), 1e-6, 1e-5), "z0 {z0} vs {mean}");
    let Objective::Kto(cfg) = Objective::parse("kto").unwrap() else {
        unreachable!()
    };
    let with_z0 = Objective::Kto(KtoConfig {
        z0: Some(z0 as f32),
        ..cfg
    });
    assert!(close(out.loss as f64, ob.loss(&with_z0, &z), 1e-6, 1e-5));
}

/// KTO's batch estimate of `z0` is held constant (no gradient flows through it): estimating
/// it (`z0: None`) gives the same loss, `dloss/dlp` and token gradient, bit for bit, as passing
/// the estimate in as a constant. (Were the estimate differentiated, each response's `dloss/dlp`
/// would pick up `dL/dz0 / n`, nonzero here since the estimate is positive.)
#[test]
fn kto_estimated_z0_is_detached() {
    let c = fixed_case();
    let Objective::Kto(cfg) = Objective::parse("kto").unwrap() else {
        unreachable!()
    };
    let unpaired = PrefBatch {
        pairs: None,
        ..c.batch()
    };
    let mut g_est = vec![0.0f32; c.logits.len()];
    let est =
        objective_forward_backward(&c.logits, &unpaired, &Objective::Kto(cfg), &mut g_est).unwrap();
    let z0 = est.kl_estimate.unwrap();
    assert!(z0 > 0.0, "the estimate is not clipped here: {z0}");
    let fixed = Objective::Kto(KtoConfig {
        z0: Some(z0),
        ..cfg
    });
    let mut g_fix = vec![0.0f32; c.logits.len()];
    let fix = objective_forward_backward(&c.logits, &unpaired, &fixed, &mut g_fix).unwrap();
    assert_eq!(fix.kl_estimate, Some(z0));
    assert_eq!(est.loss.to_bits(), fix.loss.to_bits());
    assert_eq!(est.dloss_dlogp, fix.dloss_dlogp);
    assert_eq!(est.row_weight, fix.row_weight);
    assert_eq!(g_est, g_fix);
    // And `dloss/dlp` is the oracle's derivative at that constant z0 (central differences in lp).
    let n = est.logp.len() as f64;
    for i in 0..est.logp.len() {
        let (lp, rp) = (est.logp[i] as f64, est.ref_logp[i] as f64);
        let desirable = c.labels[i] > 0.0;
        let f = |d: f64| seq_oracle::kto_loss(&fixed, lp + d, rp, desirable, z0 as f64) / n;
        let h = 1e-5;
        let fd = (f(h) - f(-h)) / (2.0 * h);
        assert!(
            close(est.dloss_dlogp[i] as f64, fd, 1e-7, 1e-3),
            "response {i}: {} vs {fd}",
            est.dloss_dlogp[i]
        );
    }
}

#[test]
fn kto_z0_is_clipped_at_zero() {
    let mut c = fixed_case();
    c.ref_logp.iter_mut().for_each(|v| *v = -1e-4); // the policy is below the reference
    let out = objective_forward(&c.logits, &c.batch(), &Objective::parse("kto").unwrap()).unwrap();
    assert_eq!(out.kl_estimate, Some(0.0));
}

/// Each scalar loss on one hand-picked pair, with the expected value written out here from
/// `losses.md` (defaults: DPO beta 0.1; IPO tau 0.1; SLiC margin 1, lambda 0.1; SimPO beta 2.5,
/// gamma 1.375; R-DPO beta 0.1, alpha 0.05; CPO beta 0.1; ORPO lambda 0.1).
#[test]
fn scalar_losses_on_a_fixed_pair() {
    let p = PairInput {
        lp_w: -3.0,
        lp_l: -5.0,
        rp_w: -4.0,
        rp_l: -4.5,
        len_w: 2,
        len_l: 4,
    };
    let (cl, rl) = (1.0f64, -0.5f64); // lp - rp
    let softplus = |x: f64| (1.0 + x.exp()).ln(); // -logsig(x) = softplus(-x)
    let lo = |a: f64| (a.exp() / (1.0 - a.exp())).ln();
    let want = [
        ("nll_pll", 3.0 - 5.0),
        ("dpo", softplus(-0.1 * (cl - rl))),
        ("ipo", (cl / 2.0 - rl / 4.0 - 5.0f64).powi(2)),
        ("slic_hf", (1.0f64 + 3.0 - 5.0).max(0.0) + 0.1 * 3.0),
        ("simpo", softplus(-(2.5 * (-1.5 + 1.25) - 1.375))),
        ("rdpo", softplus(-(0.1 * (cl - rl) + 0.05 * (2.0 - 4.0)))),
        ("cpo", softplus(-0.1 * 2.0) + 1.5),
        ("orpo", 1.5 + 0.1 * softplus(-(lo(-1.5) - lo(-1.25)))),
    ];
    for (name, w) in want {
        let got = core_pair(&Objective::parse(name).unwrap(), &p).loss as f64;
        assert!(close(got, w, 1e-6, 1e-6), "{name}: {got} vs {w}");
    }
    let Objective::Kto(cfg) = Objective::parse("kto").unwrap() else {
        unreachable!()
    };
    let d = seq::kto_loss(-3.0, -4.0, true, 0.25, &cfg).loss as f64;
    assert!(close(
        d,
        1.0 - 1.0 / (1.0 + (-0.1f64 * 0.75).exp()),
        1e-7,
        1e-6
    ));
    let u = seq::kto_loss(-5.0, -4.5, false, 0.25, &cfg).loss as f64;
    assert!(close(
        u,
        1.0 - 1.0 / (1.0 + (-0.1f64 * 0.75).exp()),
        1e-7,
        1e-6
    ));
    assert!(logsig(-1e4).is_finite() && sigma(0.0) == 0.5); // oracle sanity
}

/// Responses of length 1 whose target has log-prob about -1e4, and ORPO's mean log-prob at 0
/// (every token certain): every loss and gradient is finite, in f32 and bf16.
#[test]
fn extreme_log_probs_stay_finite() {
    fn check<T: Logit>(logits: &[T], c: &Case) {
        for obj in all_objectives() {
            let mut grad = vec![T::from_f32(0.0); logits.len()];
            let out = objective_forward_backward(logits, &c.batch(), &obj, &mut grad).unwrap();
            assert!(
                out.loss.is_finite(),
                "{} {}: loss {}",
                obj.name(),
                T::NAME,
                out.loss
            );
            assert!(
                out.dloss_dlogp.iter().all(|g| g.is_finite()),
                "{}",
                obj.name()
            );
            assert!(
                grad.iter().all(|g| g.to_f32().is_finite()),
                "{} {}",
                obj.name(),
                T::NAME
            );
        }
    }
    // Chosen: target far below the rest (lp ~ -1e4); rejected: target certain (lp = 0 in f32).
    let logits = vec![0.0f32, 0.0, -1e4, 0.0, 0.0, 100.0, 0.0, 0.0];
    let c = build(
        4,
        &[(0, 1), (0, 1)],
        &[false],
        logits.clone(),
        vec![2, 1],
        vec![-0.5, -0.5],
    );
    let lp = objective_forward(&c.logits, &c.batch(), &Objective::Nll)
        .unwrap()
        .logp;
    assert!(lp[0] < -9_000.0 && lp[1] == 0.0, "{lp:?}");
    check(&logits, &c);
    let c_swap = build(
        4,
        &[(0, 1), (0, 1)],
        &[true],
        logits.clone(),
        vec![2, 1],
        vec![-0.5, -0.5],
    );
    check(&logits, &c_swap);
    let low: Vec<bf16> = logits.iter().map(|&v| bf16::from_f32(v)).collect();
    check(&low, &c);
}

#[test]
fn names_parse_and_flags_follow_the_losses_table() {
    // (name, needs reference, needs pairs) from losses.md.
    let table = [
        ("bnf", true, false),
        ("nll", false, false),
        ("nll_pll", false, true),
        ("dpo", true, true),
        ("ipo", true, true),
        ("slic_hf", false, true),
        ("simpo", false, true),
        ("rdpo", true, true),
        ("cpo", false, true),
        ("orpo", false, true),
        ("kto", true, false),
    ];
    assert_eq!(table.len(), OBJECTIVE_NAMES.len());
    for (name, reference, pairs) in table {
        let o = Objective::parse(name).unwrap();
        assert_eq!(o.name(), name);
        assert_eq!(o.needs_reference(), reference, "{name}");
        assert_eq!(o.needs_pairs(), pairs, "{name}");
        assert!(o.validate().is_ok());
    }
    assert_eq!(Objective::parse("NLL+PLL").unwrap().name(), "nll_pll");
    assert_eq!(Objective::parse("R-DPO").unwrap().name(), "rdpo");
    assert_eq!(Objective::parse("SFT").unwrap().name(), "nll");
    assert_eq!(Objective::parse("slic-hf").unwrap().name(), "slic_hf");
    assert!(Objective::parse("dpo2").is_none());
    assert!(Objective::parse("").is_none());
}

/// A chosen response shared by two pairs collects the gradient of both (checked against
/// finite differences of the oracle for every pairwise objective).
#[test]
fn a_response_in_two_pairs_collects_both_gradients() {
    let logits = vec![
        0.2f32, 1.0, -0.5, 0.3, -1.0, 0.8, 1.1, 0.0, 0.4, -0.3, 0.9, 0.1, 0.6, -0.2, -0.7, 0.5,
    ];
    let mut c = build(
        4,
        &[(0, 2), (0, 1), (0, 1)],
        &[false],
        logits,
        vec![1, 2, 0, 3],
        vec![-1.0, -0.7, -1.5, -0.4],
    );
    c.labels = vec![1.0, -1.0, -1.0];
    c.pairs = vec![[0, 1], [0, 2]];
    let ref64 = c.ref64();
    let ob = c.oracle(&ref64);
    let z = c.z64();
    for obj in pairwise() {
        let mut grad = vec![0.0f32; c.logits.len()];
        objective_forward_backward(&c.logits, &c.batch(), &obj, &mut grad).unwrap();
        let fd = central_diff(&z, 1e-5, |zz| ob.loss(&obj, zz));
        for (k, (g, f)) in grad.iter().zip(&fd).enumerate() {
            assert!(
                close(*g as f64, *f, 2e-5, 1e-3),
                "{}: dz[{k}] {g} vs {f}",
                obj.name()
            );
        }
    }
}

/// With the `parallel` feature, rows are spread over threads; results must not change by a
/// bit (without it this checks that repeated runs agree).
#[test]
fn results_do_not_depend_on_threads() {
    let (vocab, rows) = (10_000, 8);
    let logits: Vec<f32> = (0..rows * vocab)
        .map(|k| ((k * 7919) % 1000) as f32 * 0.01 - 5.0)
        .collect();
    let targets: Vec<u32> = (0..rows as u32).map(|r| r * 1237 % vocab as u32).collect();
    let c = build(
        vocab,
        &[(0, 2), (0, 2), (0, 2), (0, 2)],
        &[false, true],
        logits,
        targets,
        vec![-3.0; rows],
    );
    for obj in all_objectives() {
        let mut runs = vec![];
        for threads in [1, 2, 4] {
            bnf_core::set_num_threads(threads);
            let mut grad = vec![0.0f32; c.logits.len()];
            let out = objective_forward_backward(&c.logits, &c.batch(), &obj, &mut grad).unwrap();
            runs.push((out, grad));
        }
        bnf_core::set_num_threads(0);
        assert!(runs.windows(2).all(|w| w[0] == w[1]), "{}", obj.name());
    }
}
