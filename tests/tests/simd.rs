//! The AVX2 versions of the row loops (chosen at run time where the CPU has them) give the
//! same bits as the portable versions: every batch entry, every dtype, BNF, NLL and a
//! sequence-level objective, with AVX2 allowed and forbidden (`set_simd`). On a CPU without
//! AVX2 both runs take the portable path and the test says so.

use bnf_core::{
    bf16, f16, forward_backward, objective_forward_backward_in_place, row_grad, row_stats,
    set_simd, simd_avx2, Batch, Logit, Objective, PrefBatch, RowDiag, RowLoss,
};
use proptest::prelude::*;

/// Every output of one batch as bits: BNF and NLL (fused pass), DPO (two passes), and the
/// row primitives on row 0.
fn outputs<T: Logit>(z: &[T], v: usize, y: &[u32], rho: &[f32]) -> Vec<u32> {
    let rows = y.len();
    let w: Vec<f32> = (0..rows)
        .map(|r| if r % 2 == 0 { 0.5 } else { -0.5 })
        .collect();
    let batch = Batch {
        vocab: v,
        targets: y,
        weights: &w,
        scored: None,
        num_responses: rows.div_ceil(2),
    };
    let mut bits = Vec::new();
    let mut push = |g: &[T]| bits.extend(g.iter().map(|x| x.to_f32().to_bits()));
    for loss in [RowLoss::Bnf { ref_logp: rho }, RowLoss::Nll] {
        let mut grad = vec![T::from_f32(0.0); z.len()];
        let mut diag = vec![RowDiag::default(); rows];
        let l = forward_backward(z, &batch, loss, &mut grad, &mut diag).unwrap();
        push(&grad);
        push(&[T::from_f32(l)]);
    }
    let offsets: Vec<usize> = (0..=rows).collect();
    let labels: Vec<f32> = (0..rows)
        .map(|r| if r % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let pairs: Vec<[usize; 2]> = (0..rows / 2).map(|k| [2 * k, 2 * k + 1]).collect();
    if !pairs.is_empty() && rows % 2 == 0 {
        let pb = PrefBatch {
            vocab: v,
            targets: y,
            scored: None,
            offsets: &offsets,
            labels: &labels,
            pairs: Some(&pairs),
            ref_logp: Some(rho),
        };
        let mut zz = z.to_vec();
        let out =
            objective_forward_backward_in_place(&mut zz, &pb, &Objective::parse("dpo").unwrap())
                .unwrap();
        push(&zz);
        push(&[T::from_f32(out.loss)]);
    }
    let stats = row_stats(&z[..v], y[0] as usize).unwrap();
    let mut g = vec![T::from_f32(0.0); v];
    row_grad(&z[..v], y[0] as usize, &stats, 0.3, &mut g).unwrap();
    push(&g);
    bits
}

fn same_bits<T: Logit>(z: &[f32], v: usize, y: &[u32], rho: &[f32]) -> Result<(), TestCaseError> {
    let z: Vec<T> = z.iter().map(|&x| T::from_f32(x)).collect();
    set_simd(true);
    let wide = outputs(&z, v, y, rho);
    set_simd(false);
    assert!(!simd_avx2());
    let narrow = outputs(&z, v, y, rho);
    set_simd(true);
    prop_assert!(
        wide == narrow,
        "{}: AVX2 and portable loops differ",
        T::NAME
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn avx2_and_portable_loops_give_the_same_bits(
        (v, z, y, rho) in (1usize..1200).prop_flat_map(|v| (
            Just(v),
            prop::collection::vec(-40.0f32..40.0, 4 * v),
            prop::collection::vec(0..v as u32, 4),
            prop::collection::vec(-12.0f32..=0.0, 4),
        ))
    ) {
        same_bits::<f32>(&z, v, &y, &rho)?;
        same_bits::<bf16>(&z, v, &y, &rho)?;
        same_bits::<f16>(&z, v, &y, &rho)?;
    }
}

#[test]
fn reports_which_path_ran() {
    set_simd(true);
    println!(
        "AVX2 row loops on this CPU: {}",
        if simd_avx2() {
            "yes"
        } else {
            "no (both runs portable)"
        }
    );
}
