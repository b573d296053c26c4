//! The two descriptions of rows the crate runs on: [`Batch`] (rows with weights, for the
//! row-local objectives) and [`Rows`] (targets and mask alone, for the row primitives). The
//! passes over them are in `pass.rs`, their checks in [`crate::check`].

/// What every objective needs besides the logits: rows are scored tokens laid out row-major
/// (`rows x vocab` logits, `rows = targets.len()`).
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// Vocabulary size `V` (row length).
    pub vocab: usize,
    /// Target token id of each row (for a causal LM: the *next* token).
    pub targets: &'a [u32],
    /// Row weights. For BNF and NLL, `s = label / |y|` (see
    /// [`response_weights`](crate::response_weights)); sequence-level objectives ignore them.
    pub weights: &'a [f32],
    /// Which rows count (`true`) and which do not (prompt, padding); `None`: every row counts.
    /// Masked rows are not validated, contribute nothing, and get a zero gradient row.
    pub scored: Option<&'a [bool]>,
    /// The batch loss is the sum of row losses divided by this (the number of responses, so
    /// the loss is the mean over responses of each response's summed row losses).
    ///
    /// Not checked against the rows beyond "0 only without scored rows": a call may run a
    /// chunk of a larger batch's rows (a fused LM head, one sequence at a time) and must then
    /// pass the whole batch's count, which its rows cannot tell. The objective API
    /// ([`crate::PrefBatch`]) counts the responses from its offsets instead.
    pub num_responses: usize,
}

impl<'a> Batch<'a> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.targets.len()
    }

    /// Whether row `r` counts: `r` is a row of the batch and, when [`Batch::scored`] is given,
    /// marked `true` there. Never panics: a row past the end (of the batch or of a too-short
    /// mask) does not count.
    #[inline]
    pub fn is_scored(&self, r: usize) -> bool {
        is_scored(self.scored, self.rows(), r)
    }
}

/// The rows a row primitive runs over: vocabulary size, one target per row, and which rows
/// count ([`Batch`] without weights; the GPU driver's row primitives take it).
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    /// Vocabulary size `V`.
    pub vocab: usize,
    /// Target id of each row.
    pub targets: &'a [u32],
    /// Which rows count; `None`: all.
    pub scored: Option<&'a [bool]>,
}

impl<'a> From<&Batch<'a>> for Rows<'a> {
    fn from(b: &Batch<'a>) -> Self {
        Rows {
            vocab: b.vocab,
            targets: b.targets,
            scored: b.scored,
        }
    }
}

impl Rows<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Whether row `r` counts (as [`Batch::is_scored`]; never panics).
    #[inline]
    pub fn is_scored(&self, r: usize) -> bool {
        is_scored(self.scored, self.len(), r)
    }
}

/// Whether row `r` of `rows` counts under the mask `scored` (`None`: every row): the one rule
/// of every batch description ([`Batch`], [`Rows`], [`crate::PrefBatch`]). Never panics: a row
/// past the end (of the batch or of a too-short mask) does not count.
#[inline]
pub(crate) fn is_scored(scored: Option<&[bool]>, rows: usize, r: usize) -> bool {
    r < rows && scored.is_none_or(|m| m.get(r).copied().unwrap_or(false))
}
