//! Computes BNF on a small built-in batch (one preferred and one dispreferred response of a
//! toy arithmetic answer) and prints the loss and each row's diagnostics.
//! Run: `cargo run -p bnf-core --example bnf_demo`.

use bnf_core::{bnf, response_weights, Batch, DISPREFERRED, PREFERRED};

fn main() -> Result<(), bnf_core::BnfError> {
    let vocab = 8;
    // Two responses of three scored tokens each. Row r's logits score target targets[r].
    let logits: Vec<f32> = vec![
        2.0, 0.1, -1.0, 0.3, 0.0, 0.5, -0.5, 0.2, // preferred, pi_y well above pi_ref
        0.0, 1.5, 0.2, -0.3, 0.9, 0.0, 0.1, -1.0, // preferred, at about pi_ref
        0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, // preferred, uniform
        -2.0, 0.5, 0.5, 3.0, 0.0, 0.0, 0.1, 0.2, // dispreferred, already pushed down
        1.0, 1.0, 4.0, 0.0, 0.0, -1.0, 0.5, 0.5, // dispreferred, still likely
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 0.0, // dispreferred, pi_y close to 1
    ];
    let targets = [0u32, 1, 5, 0, 2, 6];
    let ref_logp = [-1.2f32, -1.0, -2.08, -0.7, -0.5, -0.01];
    let mut weights = [0.0f32; 6];
    let n = response_weights(&[0, 3, 6], &[PREFERRED, DISPREFERRED], None, &mut weights)?;
    let batch = Batch {
        vocab,
        targets: &targets,
        weights: &weights,
        scored: None,
        num_responses: n,
    };
    let out = bnf(&logits, &batch, &ref_logp)?;
    println!("BNF batch loss (mean over {n} responses): {:.6}", out.loss);
    println!("row  label  pi_y      pi_ref    f_y       c         |g_y|");
    for (r, d) in out.rows.iter().enumerate() {
        let label = if weights[r] > 0.0 { "+1" } else { "-1" };
        let g_y = out.grad[r * vocab + targets[r] as usize].abs();
        println!(
            "{r:<4} {label:<6} {:<9.6} {:<9.6} {:<9.6} {:<9.6} {:.6}",
            d.pi_y,
            ref_logp[r].exp(),
            d.f_y,
            d.c,
            g_y
        );
    }
    Ok(())
}
