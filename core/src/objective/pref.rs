//! What every objective reads and returns: [`PrefBatch`] (the responses, their labels, pairs and
//! reference log-probs) and [`ObjectiveOutput`] (the loss and its per-response diagnostics).

use alloc::vec::Vec;

/// One batch for every objective. Rows are scored tokens laid out row-major (`rows x vocab`
/// logits, `rows = targets.len()`); response `i` owns rows `offsets[i]..offsets[i + 1]`, of
/// which the rows marked in `scored` are its completion tokens (`|y_i|` of them, at least 1).
#[derive(Clone, Copy, Debug)]
pub struct PrefBatch<'a> {
    /// Vocabulary size `V` (row length).
    pub vocab: usize,
    /// Target token id of each row (for a causal LM: the *next* token).
    pub targets: &'a [u32],
    /// Which rows are scored (`None`: all); the others (prompt, padding) contribute nothing and
    /// get a zero gradient row.
    pub scored: Option<&'a [bool]>,
    /// Response boundaries: length `responses + 1`, starts at 0, never decreases, ends at `rows`.
    pub offsets: &'a [usize],
    /// One per response: `+1` preferred / chosen, `-1` dispreferred / rejected.
    pub labels: &'a [f32],
    /// `(chosen, rejected)` response indices. `None`: unpaired data. Pairwise objectives need
    /// every response in at least one pair; unpaired objectives check pairs if given but do not
    /// use them.
    pub pairs: Option<&'a [[usize; 2]]>,
    /// One per row: the reference model's log-prob of the row's target. BNF uses it per row;
    /// sequence losses sum it over each response's scored rows.
    pub ref_logp: Option<&'a [f32]>,
}

impl PrefBatch<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.targets.len()
    }

    /// Number of responses (`offsets.len() - 1`; 0 for empty offsets, which are an error).
    pub fn responses(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether row `r` counts: `r` is a row of the batch and, when [`PrefBatch::scored`] is
    /// given, marked `true` there. Never panics: a row past the end (of the batch or of a
    /// too-short mask) does not count.
    #[inline]
    pub fn is_scored(&self, r: usize) -> bool {
        crate::batch::is_scored(self.scored, self.rows(), r)
    }

    /// Sum `f(r)` over each response's scored rows, in row order, in `f64`: the per-response
    /// sums of an objective's output (`lp_i = sum ell_r`, say). `f` is called only for scored
    /// rows below [`PrefBatch::rows`]; offsets that are not a valid layout give empty or short
    /// responses, never a panic.
    pub fn per_response(&self, f: impl Fn(usize) -> f64) -> Vec<f64> {
        let rows = self.rows();
        self.offsets
            .windows(2)
            .map(|w| {
                (w[0]..w[1].min(rows))
                    .filter(|&r| self.is_scored(r))
                    .map(&f)
                    .sum()
            })
            .collect()
    }
}

/// What an objective returns besides the gradient.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectiveOutput {
    /// The batch loss: the mean of [`ObjectiveOutput::terms`].
    pub loss: f32,
    /// One term per pair for pairwise objectives, one per response for unpaired ones.
    pub terms: Vec<f32>,
    /// Per response: the policy's summed log-prob over its scored rows, `lp_i = sum ell_r`.
    pub logp: Vec<f32>,
    /// Per response: the reference's summed log-prob (empty when the objective ignores the
    /// reference, and for BNF, which uses it per row).
    pub ref_logp: Vec<f32>,
    /// Per response: `|y_i|`, its number of scored rows.
    pub lengths: Vec<usize>,
    /// Per response: `dloss / dlp_i` of the batch loss. For BNF, whose loss is not a function of
    /// `lp` alone, it is the mean over the response's rows of `-row_weight` (the weight an
    /// NLL-style sequence gradient would need to match on average).
    pub dloss_dlogp: Vec<f32>,
    /// Per row: `w_r` in the row gradient `w_r (pi - onehot(y_r))` (0 for masked rows). For
    /// sequence losses `w_r = -dloss_dlogp` of the row's response.
    pub row_weight: Vec<f32>,
    /// KTO's reference point `z0` as used (estimated or given); `None` for other objectives.
    pub kl_estimate: Option<f32>,
}
