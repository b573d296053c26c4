//! The decoder-only transformer (GPT-2 shape): token and learned position embeddings,
//! pre-LayerNorm blocks of causal multi-head attention and a GELU MLP, a final LayerNorm, and
//! an LM head tied to the token embedding. Parameters, gradients and activations each live in
//! one flat buffer, the logits in one of their own; [`Model::forward`] and [`Model::backward`]
//! call the layers in order. The fused head ([`Model::forward_hidden`], then
//! [`Model::backward_with_head`]) stops the forward at the final LayerNorm and lets the loss
//! run the head chunk by chunk ([`head::TiedHead`]), so the `(N, V)` logits are never held.

pub mod acts;
pub mod attention;
pub mod buffer;
pub mod config;
pub mod head;
pub mod layers;
pub mod par;
pub mod params;

use crate::rng::Rng;
use acts::{act_sizes, Acts};
use attention::{attention_backward, attention_forward};
use buffer::{layer, layer_mut};
use config::gib;
pub use config::ModelConfig;
use head::{head_backward, head_forward, TiedHead};
use layers::*;
use params::{param_sizes, Params};

/// The model with its parameters, gradients and activation buffers.
#[derive(Clone)]
pub struct Model {
    /// Shape.
    pub config: ModelConfig,
    /// All parameters, laid out as [`Params`].
    pub params: Vec<f32>,
    /// Their gradients, same layout.
    pub grads: Vec<f32>,
    param_sizes: Vec<usize>,
    acts: Vec<f32>,
    grad_acts: Vec<f32>,
    act_sizes: Vec<usize>,
    /// The `(N, V)` logits of the last full forward (then `dloss/dlogits`, written over them by
    /// the loss); empty after [`Model::forward_hidden`].
    logits: Vec<f32>,
    /// The fused head's chunk of logits ([`TiedHead`]).
    head_chunk: Vec<f32>,
    /// `(B, T)` of the last forward.
    shape: (usize, usize),
}

/// `n` zeros, or an error (not an abort) when the memory cannot be had.
fn zeros(n: usize) -> Result<Vec<f32>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|e| format!("model: {n} parameters ({}): {e}", gib(n)))?;
    v.resize(n, 0.0);
    Ok(v)
}

impl Model {
    /// A model with GPT-2's initialisation: weights `N(0, 0.02)` (residual projections scaled
    /// by `1/sqrt(2L)`), LayerNorm weights 1, biases 0.
    pub fn new(config: ModelConfig, seed: u64) -> Result<Self, String> {
        config.validate()?;
        let sizes = param_sizes(&config);
        let mut params = zeros(sizes.iter().sum())?;
        let mut rng = Rng::new(seed);
        let proj_std = 0.02 / (2.0 * config.layers as f64).sqrt();
        let names = Params::NAMES;
        let views = buffer::split_mut(&mut params, &sizes);
        for (name, view) in names.iter().zip(views) {
            let std = match *name {
                "attprojw" | "fcprojw" => proj_std,
                "ln1w" | "ln2w" | "lnfw" => {
                    view.fill(1.0);
                    continue;
                }
                n if n.ends_with('b') => continue,
                _ => 0.02,
            };
            for p in view.iter_mut() {
                *p = (rng.normal() * std) as f32;
            }
        }
        Self::from_params(config, params)
    }

    /// A model with the given parameters (laid out as [`Params`]).
    pub fn from_params(config: ModelConfig, params: Vec<f32>) -> Result<Self, String> {
        config.validate()?;
        let sizes = param_sizes(&config);
        let n: usize = sizes.iter().sum();
        if params.len() != n {
            return Err(format!(
                "model: {} parameters given, the config needs {n}",
                params.len()
            ));
        }
        Ok(Model {
            config,
            grads: zeros(n)?,
            params,
            param_sizes: sizes,
            acts: Vec::new(),
            grad_acts: Vec::new(),
            act_sizes: Vec::new(),
            logits: Vec::new(),
            head_chunk: Vec::new(),
            shape: (0, 0),
        })
    }

    /// Element counts of the parameter tensors, in [`Params::NAMES`] order.
    pub fn param_sizes(&self) -> &[usize] {
        &self.param_sizes
    }

    /// Set all gradients to zero.
    pub fn zero_grad(&mut self) {
        self.grads.fill(0.0);
    }

    /// The logits `(B*T, V)` of the last [`Model::forward`] (or, after the loss wrote them in
    /// place, `dloss/dlogits`); empty after [`Model::forward_hidden`].
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Mutable [`Model::logits`], for the loss to overwrite with its gradient.
    pub fn logits_mut(&mut self) -> &mut [f32] {
        &mut self.logits
    }

    /// Run the model on `b` sequences of length `t` (`tokens` row-major, `b*t` ids); the
    /// logits are then in [`Model::logits`].
    pub fn forward(&mut self, tokens: &[u32], b: usize, t: usize) -> Result<(), String> {
        self.forward_hidden(tokens, b, t)?;
        let (c, v) = (self.config.channels, self.config.vocab);
        let n = b * t * v;
        self.logits
            .try_reserve_exact(n.saturating_sub(self.logits.len()))
            .map_err(|e| format!("model: logits of {b} x {t} ({}): {e}", gib(n)))?;
        self.logits.resize(n, 0.0);
        let p = Params::view(&self.params, &self.param_sizes);
        let a = Acts::view(&self.acts, &self.act_sizes);
        head_forward(&mut self.logits, a.lnf, p.wte, c, v);
        Ok(())
    }

    /// The forward up to the final LayerNorm, without the LM head: for the fused head, which
    /// makes the logits chunk by chunk in [`Model::backward_with_head`]. [`Model::logits`] is
    /// then empty (its buffer keeps what a full forward reserved).
    pub fn forward_hidden(&mut self, tokens: &[u32], b: usize, t: usize) -> Result<(), String> {
        self.logits.clear();
        let cfg = self.config;
        if t == 0 || t > cfg.block_size {
            return Err(format!(
                "model: sequence length {t} is not in 1..={}",
                cfg.block_size
            ));
        }
        if tokens.len() != b * t {
            return Err(format!(
                "model: {} tokens given for {b} x {t}",
                tokens.len()
            ));
        }
        if let Some(p) = tokens.iter().position(|&x| x as usize >= cfg.vocab) {
            return Err(format!(
                "model: token {} at {p} is not below the vocabulary {}",
                tokens[p], cfg.vocab
            ));
        }
        if self.shape != (b, t) {
            cfg.check_activations(b, t)
                .map_err(|e| format!("model: {e}"))?;
            let sizes = act_sizes(&cfg, b, t).expect("checked above");
            let n: usize = sizes.iter().sum();
            for buf in [&mut self.acts, &mut self.grad_acts] {
                buf.try_reserve_exact(n.saturating_sub(buf.len()))
                    .map_err(|e| format!("model: activations of {b} x {t} ({}): {e}", gib(n)))?;
            }
            self.act_sizes = sizes;
            self.acts.resize(n, 0.0);
            self.grad_acts.resize(n, 0.0);
            self.shape = (b, t);
        }
        let (c, l_count, nh) = (cfg.channels, cfg.layers, cfg.heads);
        let n = b * t;
        let p = Params::view(&self.params, &self.param_sizes);
        let a = Acts::view_mut(&mut self.acts, &self.act_sizes);
        encoder_forward(a.encoded, tokens, p.wte, p.wpe, t, c);
        let (nc, att_n) = (n * c, b * nh * t * t);
        for l in 0..l_count {
            let (prev, cur) = a.residual3.split_at_mut(l * nc);
            let residual: &[f32] = if l == 0 {
                a.encoded
            } else {
                &prev[(l - 1) * nc..]
            };
            let ln1 = layer_mut(a.ln1, l, nc);
            layernorm_forward(
                ln1,
                layer_mut(a.ln1_mean, l, n),
                layer_mut(a.ln1_rstd, l, n),
                residual,
                layer(p.ln1w, l, c),
                layer(p.ln1b, l, c),
                c,
            );
            let qkv = layer_mut(a.qkv, l, 3 * nc);
            matmul_forward(
                qkv,
                ln1,
                layer(p.qkvw, l, 3 * c * c),
                Some(layer(p.qkvb, l, 3 * c)),
                c,
                3 * c,
            );
            let atty = layer_mut(a.atty, l, nc);
            attention_forward(atty, layer_mut(a.att, l, att_n), qkv, t, c, nh);
            let attproj = layer_mut(a.attproj, l, nc);
            matmul_forward(
                attproj,
                atty,
                layer(p.attprojw, l, c * c),
                Some(layer(p.attprojb, l, c)),
                c,
                c,
            );
            let residual2 = layer_mut(a.residual2, l, nc);
            residual_forward(residual2, residual, attproj);
            let ln2 = layer_mut(a.ln2, l, nc);
            layernorm_forward(
                ln2,
                layer_mut(a.ln2_mean, l, n),
                layer_mut(a.ln2_rstd, l, n),
                residual2,
                layer(p.ln2w, l, c),
                layer(p.ln2b, l, c),
                c,
            );
            let fch = layer_mut(a.fch, l, 4 * nc);
            matmul_forward(
                fch,
                ln2,
                layer(p.fcw, l, 4 * c * c),
                Some(layer(p.fcb, l, 4 * c)),
                c,
                4 * c,
            );
            let fch_gelu = layer_mut(a.fch_gelu, l, 4 * nc);
            gelu_forward(fch_gelu, fch);
            let fcproj = layer_mut(a.fcproj, l, nc);
            matmul_forward(
                fcproj,
                fch_gelu,
                layer(p.fcprojw, l, 4 * c * c),
                Some(layer(p.fcprojb, l, c)),
                4 * c,
                c,
            );
            residual_forward(&mut cur[..nc], residual2, fcproj);
        }
        let last = &a.residual3[(l_count - 1) * nc..];
        layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, last, p.lnfw, p.lnfb, c);
        Ok(())
    }

    /// Backpropagate `dloss/dlogits` (written over the logits by the loss) through the last
    /// [`Model::forward`], *adding* into [`Model::grads`]. `tokens` are the ones given to the
    /// forward.
    pub fn backward(&mut self, tokens: &[u32]) -> Result<(), String> {
        self.check_backward(tokens)?;
        let (b, t) = self.shape;
        if self.logits.len() != b * t * self.config.vocab {
            return Err("model: backward needs the logits of a full forward; after \
                        forward_hidden, backpropagate with backward_with_head"
                .into());
        }
        self.grad_acts.fill(0.0);
        let p = Params::view(&self.params, &self.param_sizes);
        let g = Params::view_mut(&mut self.grads, &self.param_sizes);
        let a = Acts::view(&self.acts, &self.act_sizes);
        let d = Acts::view_mut(&mut self.grad_acts, &self.act_sizes);
        head_backward(
            d.lnf,
            g.wte,
            &self.logits,
            a.lnf,
            p.wte,
            self.config.channels,
        );
        self.backward_blocks(tokens);
        Ok(())
    }

    /// The fused head's backward after [`Model::forward_hidden`]: `loss` gets the tied head
    /// ([`TiedHead`]) and runs it chunk by chunk, making each chunk's logits, writing the
    /// loss's gradient over them and adding that chunk's `dx` and `dW`; then `dx` is
    /// backpropagated through the blocks, *adding* into [`Model::grads`]. Returns what `loss`
    /// returns; when it fails, the blocks are not run (the head's gradient may be partly added).
    pub fn backward_with_head<R>(
        &mut self,
        tokens: &[u32],
        loss: impl FnOnce(&mut TiedHead<'_>) -> Result<R, String>,
    ) -> Result<R, String> {
        self.check_backward(tokens)?;
        self.grad_acts.fill(0.0);
        let p = Params::view(&self.params, &self.param_sizes);
        let g = Params::view_mut(&mut self.grads, &self.param_sizes);
        let a = Acts::view(&self.acts, &self.act_sizes);
        let d = Acts::view_mut(&mut self.grad_acts, &self.act_sizes);
        let c = self.config.channels;
        let mut head = TiedHead::new(a.lnf, p.wte, d.lnf, g.wte, &mut self.head_chunk, c);
        let out = loss(&mut head)?;
        self.backward_blocks(tokens);
        Ok(out)
    }

    /// That `tokens` are the last forward's.
    fn check_backward(&self, tokens: &[u32]) -> Result<(), String> {
        let (b, t) = self.shape;
        if b * t == 0 || tokens.len() != b * t {
            return Err(format!(
                "model: backward got {} tokens, the last forward ran {b} x {t}",
                tokens.len()
            ));
        }
        Ok(())
    }

    /// Backpropagate `dloss/dlnf` (in the activation gradients, written by the head) through
    /// the final LayerNorm, the blocks and the embeddings, adding into [`Model::grads`].
    fn backward_blocks(&mut self, tokens: &[u32]) {
        let cfg = self.config;
        let (b, t) = self.shape;
        let (c, l_count, nh) = (cfg.channels, cfg.layers, cfg.heads);
        let n = b * t;
        let (nc, att_n) = (n * c, b * nh * t * t);
        let p = Params::view(&self.params, &self.param_sizes);
        let g = Params::view_mut(&mut self.grads, &self.param_sizes);
        let a = Acts::view(&self.acts, &self.act_sizes);
        let d = Acts::view_mut(&mut self.grad_acts, &self.act_sizes);
        let last = &a.residual3[(l_count - 1) * nc..];
        let dlast = &mut d.residual3[(l_count - 1) * nc..];
        layernorm_backward(
            dlast, g.lnfw, g.lnfb, d.lnf, last, p.lnfw, a.lnf_mean, a.lnf_rstd, c,
        );
        for l in (0..l_count).rev() {
            let residual: &[f32] = if l == 0 {
                a.encoded
            } else {
                layer(a.residual3, l - 1, nc)
            };
            let (dprev, dcur) = d.residual3.split_at_mut(l * nc);
            let dresidual: &mut [f32] = if l == 0 {
                &mut *d.encoded
            } else {
                &mut dprev[(l - 1) * nc..]
            };
            let dres3 = &dcur[..nc];
            let dresidual2 = layer_mut(d.residual2, l, nc);
            let dfcproj = layer_mut(d.fcproj, l, nc);
            residual_backward(dresidual2, dfcproj, dres3);
            let dfch_gelu = layer_mut(d.fch_gelu, l, 4 * nc);
            matmul_backward(
                dfch_gelu,
                layer_mut(g.fcprojw, l, 4 * c * c),
                Some(layer_mut(g.fcprojb, l, c)),
                dfcproj,
                layer(a.fch_gelu, l, 4 * nc),
                layer(p.fcprojw, l, 4 * c * c),
                4 * c,
                c,
            );
            let dfch = layer_mut(d.fch, l, 4 * nc);
            gelu_backward(dfch, layer(a.fch, l, 4 * nc), dfch_gelu);
            let dln2 = layer_mut(d.ln2, l, nc);
            matmul_backward(
                dln2,
                layer_mut(g.fcw, l, 4 * c * c),
                Some(layer_mut(g.fcb, l, 4 * c)),
                dfch,
                layer(a.ln2, l, nc),
                layer(p.fcw, l, 4 * c * c),
                c,
                4 * c,
            );
            layernorm_backward(
                dresidual2,
                layer_mut(g.ln2w, l, c),
                layer_mut(g.ln2b, l, c),
                dln2,
                layer(a.residual2, l, nc),
                layer(p.ln2w, l, c),
                layer(a.ln2_mean, l, n),
                layer(a.ln2_rstd, l, n),
                c,
            );
            let dattproj = layer_mut(d.attproj, l, nc);
            residual_backward(dresidual, dattproj, dresidual2);
            let datty = layer_mut(d.atty, l, nc);
            matmul_backward(
                datty,
                layer_mut(g.attprojw, l, c * c),
                Some(layer_mut(g.attprojb, l, c)),
                dattproj,
                layer(a.atty, l, nc),
                layer(p.attprojw, l, c * c),
                c,
                c,
            );
            let dqkv = layer_mut(d.qkv, l, 3 * nc);
            attention_backward(
                dqkv,
                datty,
                layer(a.qkv, l, 3 * nc),
                layer(a.att, l, att_n),
                t,
                c,
                nh,
            );
            let dln1 = layer_mut(d.ln1, l, nc);
            matmul_backward(
                dln1,
                layer_mut(g.qkvw, l, 3 * c * c),
                Some(layer_mut(g.qkvb, l, 3 * c)),
                dqkv,
                layer(a.ln1, l, nc),
                layer(p.qkvw, l, 3 * c * c),
                c,
                3 * c,
            );
            layernorm_backward(
                dresidual,
                layer_mut(g.ln1w, l, c),
                layer_mut(g.ln1b, l, c),
                dln1,
                residual,
                layer(p.ln1w, l, c),
                layer(a.ln1_mean, l, n),
                layer(a.ln1_rstd, l, n),
                c,
            );
        }
        encoder_backward(g.wte, g.wpe, d.encoded, tokens, t, c);
    }
}
