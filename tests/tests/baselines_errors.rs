//! Bad input to the objective API gets an error value naming what is wrong, and nothing is
//! written to the gradient buffer (or the logits, in place).
use bnf_core::{
    objective_forward, objective_forward_backward, objective_forward_backward_in_place, row_stats,
    BnfError, DpoConfig, IpoConfig, KtoConfig, Objective, OrpoConfig, PrefBatch, RowStats, Site,
    OBJECTIVE_NAMES,
};

const V: usize = 3;

/// Two pairs of one- and two-row responses; row 0 is a masked prompt row.
struct Fixture {
    logits: Vec<f32>,
    targets: Vec<u32>,
    scored: Vec<bool>,
    offsets: Vec<usize>,
    labels: Vec<f32>,
    pairs: Vec<[usize; 2]>,
    ref_logp: Vec<f32>,
}

impl Fixture {
    fn new() -> Self {
        let rows = 7;
        Fixture {
            logits: (0..rows * V)
                .map(|k| ((k * 7) % 5) as f32 * 0.5 - 1.0)
                .collect(),
            targets: vec![0, 1, 2, 0, 1, 2, 0],
            scored: vec![false, true, true, true, true, true, true],
            offsets: vec![0, 2, 3, 5, 7],
            labels: vec![1.0, -1.0, 1.0, -1.0],
            pairs: vec![[0, 1], [2, 3]],
            ref_logp: vec![-1.0; rows],
        }
    }

    fn batch(&self) -> PrefBatch<'_> {
        PrefBatch {
            vocab: V,
            targets: &self.targets,
            scored: Some(&self.scored),
            offsets: &self.offsets,
            labels: &self.labels,
            pairs: Some(&self.pairs),
            ref_logp: Some(&self.ref_logp),
        }
    }
}

/// Run `obj` every way; all three calls must fail with `want`, leaving the buffers untouched.
fn expect_err(logits: &[f32], batch: &PrefBatch<'_>, obj: &Objective, want: BnfError) {
    let sentinel = 12345.0f32;
    let mut grad = vec![sentinel; logits.len()];
    assert_eq!(
        objective_forward_backward(logits, batch, obj, &mut grad),
        Err(want),
        "{}",
        obj.name()
    );
    assert!(
        grad.iter().all(|&g| g == sentinel),
        "{}: grad written on error",
        obj.name()
    );
    let mut z = logits.to_vec();
    assert_eq!(
        objective_forward_backward_in_place(&mut z, batch, obj),
        Err(want)
    );
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&z),
        bits(logits),
        "{}: logits written on error",
        obj.name()
    );
    assert_eq!(objective_forward(logits, batch, obj), Err(want));
}

fn all() -> Vec<Objective> {
    OBJECTIVE_NAMES
        .iter()
        .map(|n| Objective::parse(n).unwrap())
        .collect()
}

#[test]
fn the_fixture_is_valid_for_every_objective() {
    let f = Fixture::new();
    for obj in all() {
        let out = objective_forward(&f.logits, &f.batch(), &obj).unwrap();
        assert!(out.loss.is_finite(), "{}", obj.name());
    }
}

#[test]
fn unpaired_data_to_a_pairwise_loss() {
    let f = Fixture::new();
    let unpaired = PrefBatch {
        pairs: None,
        ..f.batch()
    };
    for obj in all() {
        if obj.needs_pairs() {
            expect_err(
                &f.logits,
                &unpaired,
                &obj,
                BnfError::MissingPairs {
                    objective: obj.name(),
                },
            );
        } else {
            assert!(
                objective_forward(&f.logits, &unpaired, &obj).is_ok(),
                "{}",
                obj.name()
            );
        }
    }
}

#[test]
fn a_response_without_partner() {
    let f = Fixture::new();
    let one_pair = [[0usize, 1usize]];
    let b = PrefBatch {
        pairs: Some(&one_pair),
        ..f.batch()
    };
    for obj in all().into_iter().filter(|o| o.needs_pairs()) {
        match objective_forward(&f.logits, &b, &obj) {
            Err(BnfError::InvalidPair { pair: 2, .. }) => {}
            other => panic!("{}: {other:?}", obj.name()),
        }
    }
}

#[test]
fn missing_reference() {
    let f = Fixture::new();
    let b = PrefBatch {
        ref_logp: None,
        ..f.batch()
    };
    for obj in all() {
        if obj.needs_reference() {
            expect_err(
                &f.logits,
                &b,
                &obj,
                BnfError::MissingReference {
                    objective: obj.name(),
                },
            );
        } else {
            assert!(
                objective_forward(&f.logits, &b, &obj).is_ok(),
                "{}",
                obj.name()
            );
        }
    }
}

#[test]
fn reference_of_the_wrong_length_or_value() {
    let f = Fixture::new();
    let short = vec![-1.0f32; 3];
    let b = PrefBatch {
        ref_logp: Some(&short),
        ..f.batch()
    };
    let dpo = Objective::Dpo(DpoConfig::default());
    expect_err(
        &f.logits,
        &b,
        &dpo,
        BnfError::LengthMismatch {
            what: "ref_logp",
            expected: 7,
            found: 3,
        },
    );
    let mut bad = f.ref_logp.clone();
    bad[4] = f32::NEG_INFINITY; // zero reference mass makes every log-ratio infinite
    let b = PrefBatch {
        ref_logp: Some(&bad),
        ..f.batch()
    };
    expect_err(
        &f.logits,
        &b,
        &dpo,
        BnfError::InvalidRefLogProb {
            row: 4,
            value: f32::NEG_INFINITY,
        },
    );
    bad[4] = 0.5;
    let b = PrefBatch {
        ref_logp: Some(&bad),
        ..f.batch()
    };
    expect_err(
        &f.logits,
        &b,
        &dpo,
        BnfError::InvalidRefLogProb { row: 4, value: 0.5 },
    );
    bad[4] = f32::NAN;
    let b = PrefBatch {
        ref_logp: Some(&bad),
        ..f.batch()
    };
    let err = objective_forward(&f.logits, &b, &dpo).unwrap_err();
    assert!(
        matches!(err, BnfError::InvalidRefLogProb { row: 4, value } if value.is_nan()),
        "{err:?}"
    );
}

#[test]
fn zero_length_responses() {
    let f = Fixture::new();
    // Response 0 keeps only its masked prompt row.
    let offsets = [0usize, 1, 3, 5, 7];
    let b = PrefBatch {
        offsets: &offsets,
        ..f.batch()
    };
    for obj in all() {
        expect_err(&f.logits, &b, &obj, BnfError::EmptyResponse { response: 0 });
    }
    // Response 1 has no rows at all.
    let offsets = [0usize, 2, 2, 5, 7];
    let b = PrefBatch {
        offsets: &offsets,
        ..f.batch()
    };
    for obj in all() {
        expect_err(&f.logits, &b, &obj, BnfError::EmptyResponse { response: 1 });
    }
}

#[test]
fn pairs_whose_sides_are_in_different_batches() {
    let f = Fixture::new();
    for (pairs, pair) in [
        (vec![[0usize, 1], [2, 9]], 1),
        (vec![[7usize, 1], [2, 3]], 0),
    ] {
        let b = PrefBatch {
            pairs: Some(&pairs),
            ..f.batch()
        };
        for obj in all() {
            match objective_forward(&f.logits, &b, &obj) {
                Err(BnfError::InvalidPair { pair: p, .. }) if p == pair => {}
                other => panic!("{}: {other:?}", obj.name()),
            }
        }
    }
}

#[test]
fn malformed_pairs() {
    let f = Fixture::new();
    let cases = [
        vec![[1usize, 0], [2, 3]], // chosen labelled -1
        vec![[0usize, 1], [2, 2]], // same response twice
        vec![[0usize, 1], [2, 0]], // rejected labelled +1
    ];
    let want_pair = [0usize, 1, 1];
    for (pairs, &want) in cases.iter().zip(&want_pair) {
        let b = PrefBatch {
            pairs: Some(pairs),
            ..f.batch()
        };
        let dpo = Objective::parse("dpo").unwrap();
        match objective_forward(&f.logits, &b, &dpo) {
            Err(BnfError::InvalidPair { pair, .. }) => assert_eq!(pair, want, "{pairs:?}"),
            other => panic!("{pairs:?}: {other:?}"),
        }
    }
}

#[test]
fn kto_needs_a_side_for_every_response() {
    let f = Fixture::new();
    let labels = [1.0f32, 0.0, 1.0, -1.0];
    let b = PrefBatch {
        labels: &labels,
        pairs: None,
        ..f.batch()
    };
    let kto = Objective::parse("kto").unwrap();
    expect_err(
        &f.logits,
        &b,
        &kto,
        BnfError::InvalidLabel {
            response: 1,
            value: 0.0,
        },
    );
}

#[test]
fn out_of_domain_configuration() {
    let f = Fixture::new();
    let cases = [
        (Objective::Dpo(DpoConfig { beta: 0.0 }), "beta", 0.0),
        (Objective::Ipo(IpoConfig { tau: -1.0 }), "tau", -1.0),
        // Below MIN_TAU the target margin's square overflows: every loss would be infinite.
        (Objective::Ipo(IpoConfig { tau: 1e-19 }), "tau", 1e-19),
        (
            Objective::Ipo(IpoConfig {
                tau: f32::from_bits(1),
            }),
            "tau",
            f32::from_bits(1),
        ),
        (
            Objective::Kto(KtoConfig {
                desirable_weight: -0.5,
                ..KtoConfig::default()
            }),
            "desirable_weight",
            -0.5,
        ),
        (
            Objective::Kto(KtoConfig {
                z0: Some(f32::INFINITY),
                ..KtoConfig::default()
            }),
            "z0",
            f32::INFINITY,
        ),
        // losses.md: z0 = max(0, KL estimate), never negative.
        (
            Objective::Kto(KtoConfig {
                z0: Some(-0.25),
                ..KtoConfig::default()
            }),
            "z0",
            -0.25,
        ),
    ];
    for (obj, what, value) in cases {
        expect_err(
            &f.logits,
            &f.batch(),
            &obj,
            BnfError::InvalidConfig {
                objective: obj.name(),
                what,
                value,
            },
        );
    }
}

#[test]
fn buffer_and_row_errors() {
    let f = Fixture::new();
    let dpo = Objective::parse("dpo").unwrap();
    let mut grad = vec![0.0f32; 5];
    assert_eq!(
        objective_forward_backward(&f.logits, &f.batch(), &dpo, &mut grad),
        Err(BnfError::LengthMismatch {
            what: "grad",
            expected: f.logits.len(),
            found: 5
        })
    );
    expect_err(
        &f.logits[..6],
        &f.batch(),
        &dpo,
        BnfError::LengthMismatch {
            what: "logits",
            expected: 21,
            found: 6,
        },
    );
    let mut targets = f.targets.clone();
    targets[3] = 3;
    let b = PrefBatch {
        targets: &targets,
        ..f.batch()
    };
    for obj in all() {
        expect_err(
            &f.logits,
            &b,
            &obj,
            BnfError::TargetOutOfRange {
                row: 3,
                target: 3,
                vocab: V,
            },
        );
    }
    let mut logits = f.logits.clone();
    logits[5 * V + 1] = f32::INFINITY;
    for obj in all() {
        expect_err(
            &logits,
            &f.batch(),
            &obj,
            BnfError::NonFiniteLogits {
                row: 5,
                col: 1,
                value: f32::INFINITY,
            },
        );
    }
    // A masked row is not validated.
    let mut logits = f.logits.clone();
    logits[1] = f32::NAN;
    assert!(objective_forward(&logits, &f.batch(), &dpo).is_ok());
}

/// `rows * vocab` past `usize::MAX` is a length error for every objective, not a panic.
#[test]
fn rows_times_vocab_overflow_is_an_error() {
    let f = Fixture::new();
    let b = PrefBatch {
        vocab: usize::MAX / 2,
        ..f.batch()
    };
    for obj in all() {
        expect_err(
            &f.logits,
            &b,
            &obj,
            BnfError::LengthMismatch {
                what: "logits",
                expected: usize::MAX,
                found: f.logits.len(),
            },
        );
    }
}

/// The smallest accepted IPO `tau` gives a finite loss and finite gradients.
#[test]
fn ipo_at_min_tau_is_finite() {
    let f = Fixture::new();
    let ipo = Objective::Ipo(IpoConfig {
        tau: IpoConfig::MIN_TAU,
    });
    let mut grad = vec![0.0f32; f.logits.len()];
    let out = objective_forward_backward(&f.logits, &f.batch(), &ipo, &mut grad).unwrap();
    assert!(out.loss.is_finite() && out.loss > 1e35, "loss {}", out.loss);
    assert!(grad.iter().all(|g| g.is_finite()));
}

/// Terms and derivatives are checked before the gradient pass writes any row: an ORPO
/// `lambda` of `f32::MAX` (in its domain) times the second pair's odds-ratio loss (and its
/// log-odds derivative above 2) overflows, an `Overflow` naming the pair and the loss term
/// (not a "weight", which ORPO does not take), and rows 0-4 (which a pass without the check
/// would have written first) keep their sentinels.
#[test]
fn non_finite_row_weights_fail_before_any_row_is_written() {
    let f = Fixture::new();
    let orpo = Objective::Orpo(OrpoConfig { lambda: f32::MAX });
    let is_want = |e: &Result<_, BnfError>| {
        matches!(e, Err(BnfError::Overflow { at: Site::Pair(1), what: "loss term", value, dtype: "f32" })
            if value.is_infinite())
    };
    let sentinel = 12345.0f32;
    let mut grad = vec![sentinel; f.logits.len()];
    let e = objective_forward_backward(&f.logits, &f.batch(), &orpo, &mut grad);
    assert!(is_want(&e), "{e:?}");
    assert!(grad.iter().all(|&g| g == sentinel), "grad written on error");
    let mut z = f.logits.clone();
    let e = objective_forward_backward_in_place(&mut z, &f.batch(), &orpo);
    assert!(is_want(&e), "{e:?}");
    assert_eq!(z, f.logits, "logits written on error");
}

/// The fixture's row statistics, as a GPU would hand them to `forward_from_stats`.
fn fixture_stats(f: &Fixture, logits: &[f32]) -> Vec<RowStats> {
    (0..f.targets.len())
        .map(|r| row_stats(&logits[r * V..(r + 1) * V], f.targets[r] as usize).unwrap())
        .collect()
}

/// `forward_from_stats` takes only finite log-probs: with `ell = -inf` on both sides of a
/// DPO pair the log-ratio difference would be `-inf - -inf = NaN`, loss and weights NaN.
#[test]
fn forward_from_stats_rejects_non_finite_ell() {
    let f = Fixture::new();
    let good = fixture_stats(&f, &f.logits);
    for obj in all()
        .into_iter()
        .filter(|o| !matches!(o, Objective::Bnf | Objective::Nll))
    {
        assert!(bnf_core::forward_from_stats(&f.batch(), &obj, &good).is_ok());
        for bad in [f32::NEG_INFINITY, f32::NAN, 0.5] {
            let mut stats = good.clone();
            // Response 0 (rows 0-1, row 0 masked) and response 1 (row 2): the pair [0, 1].
            stats[1].ell = bad;
            stats[2].ell = bad;
            let e = bnf_core::forward_from_stats(&f.batch(), &obj, &stats);
            assert!(
                matches!(
                    e,
                    Err(BnfError::InvalidStats { row: 1, what: "ell", value })
                        if value.to_bits() == bad.to_bits()
                ),
                "{} ell {bad}: {e:?}",
                obj.name()
            );
        }
        // A masked row is not checked.
        let mut stats = good.clone();
        stats[0].ell = f32::NEG_INFINITY;
        assert!(bnf_core::forward_from_stats(&f.batch(), &obj, &stats).is_ok());
    }
}

/// Finite log-probs whose sum over a response overflows `f32`: an `Overflow` naming the
/// response, the quantity and the sum (both from row statistics and from the logits), not a
/// NaN loss.
#[test]
fn summed_log_prob_overflow_names_the_response() {
    let f = Fixture::new();
    // Response 2 is rows 3-4 (targets 0 and 1): put each target 3.4e38 below its row's max.
    let mut logits = f.logits.clone();
    for (r, y) in [(3usize, 0usize), (4, 1)] {
        for j in 0..V {
            logits[r * V + j] = if j == y { -1.7e38 } else { 1.7e38 };
        }
    }
    let stats = fixture_stats(&f, &logits);
    assert!(stats[3].ell.is_finite() && stats[3].ell < -3e38);
    let sum = stats[3].ell as f64 + stats[4].ell as f64;
    assert!(sum < -f32::MAX as f64);
    let want = BnfError::Overflow {
        at: Site::Response(2),
        what: "summed log-prob log pi(y)",
        value: sum,
        dtype: "f32",
    };
    for obj in all()
        .into_iter()
        .filter(|o| !matches!(o, Objective::Bnf | Objective::Nll))
    {
        assert_eq!(
            bnf_core::forward_from_stats(&f.batch(), &obj, &stats),
            Err(want),
            "{}",
            obj.name()
        );
        expect_err(&logits, &f.batch(), &obj, want);
    }
}
