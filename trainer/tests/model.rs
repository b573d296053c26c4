//! The model is causal: the logits at a position depend on the tokens up to it and on nothing
//! after it, bit for bit. So right padding (what a batch of responses of different lengths
//! gets) leaves the logits at the real positions as they are without it.

use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::rng::Rng;
use bnf_trainer::tokenizer::{PAD, VOCAB};

const CFG: ModelConfig = ModelConfig {
    vocab: VOCAB,
    block_size: 12,
    channels: 16,
    heads: 4,
    layers: 2,
};

fn logits(model: &mut Model, tokens: &[u32], b: usize, t: usize) -> Vec<u32> {
    model.forward(tokens, b, t).unwrap();
    model.logits().iter().map(|x| x.to_bits()).collect()
}

fn random_tokens(rng: &mut Rng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.below(256) as u32).collect()
}

#[test]
fn changing_a_token_leaves_earlier_logits_bit_identical() {
    let mut model = Model::new(CFG, 3).unwrap();
    let mut rng = Rng::new(1);
    let t = CFG.block_size;
    let v = CFG.vocab;
    let tokens = random_tokens(&mut rng, t);
    let base = logits(&mut model, &tokens, 1, t);
    for j in 0..t {
        let mut changed = tokens.clone();
        changed[j] = (changed[j] + 1 + rng.below(255) as u32) % 256;
        let out = logits(&mut model, &changed, 1, t);
        assert_eq!(
            out[..j * v],
            base[..j * v],
            "a change at {j} moved an earlier logit"
        );
        // ... and it does reach position j (the test would prove nothing otherwise).
        assert_ne!(
            out[j * v..(j + 1) * v],
            base[j * v..(j + 1) * v],
            "position {j}"
        );
    }
}

#[test]
fn right_padding_leaves_real_positions_bit_identical() {
    let mut model = Model::new(CFG, 4).unwrap();
    let mut rng = Rng::new(2);
    let (t, v) = (CFG.block_size, CFG.vocab);
    for n in [1, 5, t - 1] {
        let seq = random_tokens(&mut rng, n);
        let alone = logits(&mut model, &seq, 1, n);
        // Padded to the block size, alone and as the second of a batch of two.
        let mut padded = seq.clone();
        padded.resize(t, PAD);
        let one = logits(&mut model, &padded, 1, t);
        assert_eq!(one[..n * v], alone[..], "length {n}, padded to {t}");
        let mut two = random_tokens(&mut rng, t);
        two.extend(&padded);
        let both = logits(&mut model, &two, 2, t);
        assert_eq!(
            both[t * v..(t + n) * v],
            alone[..],
            "length {n}, second of two"
        );
    }
}

/// A forward too large for memory is an error naming the batch, not an abort.
#[test]
fn a_huge_forward_is_an_error() {
    let cfg = ModelConfig {
        vocab: 11,
        block_size: 1 << 20,
        channels: 8,
        heads: 2,
        layers: 1,
    };
    let mut model = Model::new(cfg, 1).unwrap();
    let t = 1 << 20;
    let err = model.forward(&vec![1; t], 1, t).unwrap_err();
    assert!(
        err.contains("a forward of 1 sequences of 1048576 tokens")
            && err.contains("more than the limit"),
        "{err}"
    );
    // The model still runs a batch that fits.
    model.forward(&[1, 2, 3], 1, 3).unwrap();
}
