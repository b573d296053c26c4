//! `forward_from_rows` (the row-local output from per-row results computed elsewhere, as the
//! GPU path hands them) gives what `objective_forward` gives, bit for bit.

use bnf_core::{
    forward, forward_from_rows, objective_forward, response_weights, Batch, BnfError, Objective,
    PrefBatch, RowDiag, RowLoss,
};

#[test]
fn row_local_outputs_from_rows_are_the_host_paths() {
    let (rows, vocab) = (7, 5);
    let logits: Vec<f32> = (0..rows * vocab)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 4.0)
        .collect();
    let targets: Vec<u32> = (0..rows as u32).map(|r| r * 3 % vocab as u32).collect();
    let scored = [false, true, true, true, false, true, true];
    let offsets = [0, 4, 7];
    let labels = [1.0, -1.0];
    let ref_logp: Vec<f32> = (0..rows).map(|r| -0.3 - r as f32 / 5.0).collect();
    let pb = PrefBatch {
        vocab,
        targets: &targets,
        scored: Some(&scored),
        offsets: &offsets,
        labels: &labels,
        pairs: Some(&[[0, 1]]),
        ref_logp: Some(&ref_logp),
    };
    let mut weights = vec![0.0; rows];
    let n = response_weights(&offsets, &labels, Some(&scored), &mut weights).unwrap();
    let batch = Batch {
        vocab,
        targets: &targets,
        weights: &weights,
        scored: Some(&scored),
        num_responses: n,
    };
    for (obj, loss) in [
        (
            Objective::Bnf,
            RowLoss::Bnf {
                ref_logp: &ref_logp,
            },
        ),
        (Objective::Nll, RowLoss::Nll),
    ] {
        let mut diag = vec![RowDiag::default(); rows];
        forward(&logits, &batch, loss, &mut diag).unwrap();
        let got = forward_from_rows(&pb, &obj, &diag).unwrap();
        assert_eq!(
            got,
            objective_forward(&logits, &pb, &obj).unwrap(),
            "{obj:?}"
        );
        assert!(matches!(
            forward_from_rows(&pb, &obj, &diag[1..]),
            Err(BnfError::LengthMismatch { .. })
        ));
    }
    let dpo = Objective::parse("dpo").unwrap();
    assert!(matches!(
        forward_from_rows(&pb, &dpo, &[RowDiag::default(); 7]),
        Err(BnfError::InvalidConfig { .. })
    ));
}
