//! The batch functions fuse the two row primitives (one `exp` per logit, the row's
//! exponentials kept in a row-long scratch): their loss, diagnostics and gradient must be the
//! primitives' own, bit for bit. The reference here is built only from the public primitives:
//! `row_stats`, `bnf_scalars` and `row_grad`, row by row. (Batches big enough to use threads
//! are in `threads.rs`.)

use bnf_core::{
    bf16, bnf_scalars, f16, forward, forward_backward, forward_backward_in_place, row_grad,
    row_stats, Batch, Logit, RowDiag, RowLoss,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    vocab: usize,
    z: Vec<f32>,
    y: Vec<u32>,
    w: Vec<f32>,
    rho: Vec<f32>,
    scored: Vec<bool>,
}

/// Up to 5 rows; vocabularies around the reduction block (512) so blocks and remainders mix.
fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=5,
        prop::sample::select(vec![1usize, 3, 8, 9, 511, 512, 513, 1100]),
    )
        .prop_flat_map(|(rows, vocab)| {
            (
                prop::collection::vec(-30.0f32..30.0, rows * vocab),
                prop::collection::vec(0..vocab as u32, rows),
                prop::collection::vec(-2.0f32..2.0, rows),
                prop::collection::vec(-15.0f32..=0.0, rows),
                prop::collection::vec(prop::bool::weighted(0.8), rows),
            )
                .prop_map(move |(z, y, w, rho, scored)| Case {
                    vocab,
                    z,
                    y,
                    w,
                    rho,
                    scored,
                })
        })
}

/// The batch from the primitives: per scored row `row_stats`, the objective's `c`, and
/// `row_grad` with weight `s c / n`; masked rows zero.
fn from_primitives<T: Logit>(c: &Case, z: &[T], loss: RowLoss<'_>, n: usize) -> Vec<T> {
    let v = c.vocab;
    let mut grad = vec![T::from_f32(0.0); z.len()];
    for r in (0..c.y.len()).filter(|&r| c.scored[r]) {
        let zr = &z[r * v..(r + 1) * v];
        let stats = row_stats(zr, c.y[r] as usize).unwrap();
        let cr = match loss {
            RowLoss::Bnf { ref_logp } => bnf_scalars(&stats, ref_logp[r]).c,
            RowLoss::Nll => 1.0,
        };
        let w = c.w[r] * cr / n as f32;
        row_grad(
            zr,
            c.y[r] as usize,
            &stats,
            w,
            &mut grad[r * v..(r + 1) * v],
        )
        .unwrap();
    }
    grad
}

fn bits<T: Logit>(v: &[T]) -> Vec<u32> {
    v.iter().map(|x| x.to_f32().to_bits()).collect()
}

fn check<T: Logit>(c: &Case) -> Result<(), TestCaseError> {
    let z: Vec<T> = c.z.iter().map(|&x| T::from_f32(x)).collect();
    let n = 3;
    let batch = Batch {
        vocab: c.vocab,
        targets: &c.y,
        weights: &c.w,
        scored: Some(&c.scored),
        num_responses: n,
    };
    for loss in [RowLoss::Bnf { ref_logp: &c.rho }, RowLoss::Nll] {
        let rows = c.y.len();
        let mut d_fwd = vec![RowDiag::default(); rows];
        let l_fwd = forward(&z, &batch, loss, &mut d_fwd).unwrap();
        let mut grad = vec![T::from_f32(9.0); z.len()];
        let mut d_fb = vec![RowDiag::default(); rows];
        let l_fb = forward_backward(&z, &batch, loss, &mut grad, &mut d_fb).unwrap();
        let mut zz = z.clone();
        let mut d_ip = vec![RowDiag::default(); rows];
        let l_ip = forward_backward_in_place(&mut zz, &batch, loss, &mut d_ip).unwrap();
        let want = from_primitives(c, &z, loss, n);
        prop_assert_eq!(bits(&grad), bits(&want), "{} fused vs primitives", T::NAME);
        prop_assert_eq!(bits(&zz), bits(&want), "{} in place vs primitives", T::NAME);
        prop_assert_eq!(l_fb.to_bits(), l_fwd.to_bits());
        prop_assert_eq!(l_ip.to_bits(), l_fwd.to_bits());
        prop_assert_eq!(&d_fb, &d_fwd);
        prop_assert_eq!(&d_ip, &d_fwd);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fused_batch_equals_the_row_primitives(c in case()) {
        check::<f32>(&c)?;
        check::<bf16>(&c)?;
        check::<f16>(&c)?;
    }
}
