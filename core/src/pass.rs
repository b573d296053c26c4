//! The two-phase driver every objective runs on:
//!
//! 1. **statistics pass**: validate each scored row and compute its [`RowStats`] (reads the
//!    logits, writes nothing but the per-row records). Any error stops here, so no output
//!    buffer has been touched;
//! 2. **gradient pass**: check every row's weight and statistics, then write
//!    `w_r * (pi - onehot(y_r))` for every row, with `w_r` supplied by the objective (0 and a
//!    zero row for masked rows), in place or into a separate buffer.

use crate::batch::Batch;
use crate::check;
use crate::dtype::Logit;
use crate::error::BnfError;
use crate::exec::{for_row_runs, for_row_runs2};
use crate::row::{row_grad, row_grad_from_exps, row_grad_in_place, row_max, row_stats_from_max};
use crate::stats::RowStats;

impl Batch<'_> {
    /// Validate scored row `r`'s target, weight and logits; its maximum.
    pub(crate) fn row_max<T: Logit>(&self, logits: &[T], r: usize) -> Result<f32, BnfError> {
        check::scored_row(self, r)?;
        row_max(self.row(logits, r), self.targets[r] as usize).map_err(|e| e.at_row(r))
    }

    /// Row `r` of a `rows x vocab` buffer.
    fn row<'b, T>(&self, data: &'b [T], r: usize) -> &'b [T] {
        &data[r * self.vocab..(r + 1) * self.vocab]
    }

    /// Validate scored row `r`'s target and weight, then compute its statistics.
    fn row_stats<T: Logit>(&self, logits: &[T], r: usize) -> Result<RowStats, BnfError> {
        let m = self.row_max(logits, r)?;
        let y = self.targets[r] as usize;
        row_stats_from_max(self.row(logits, r), y, m, None).map_err(|e| e.at_row(r))
    }

    /// Pass 1: `records[r] = per_row(r, stats)` for scored rows, `R::default()` for masked ones.
    /// Each row's max and sums are taken back to back (the row still in cache). On error the records before the
    /// failing row have been written: callers whose records belong to the user collect them
    /// in a scratch buffer first (see [`crate::forward`]).
    pub(crate) fn stats_pass<T, R, F>(
        &self,
        logits: &[T],
        records: &mut [R],
        per_row: F,
    ) -> Result<(), BnfError>
    where
        T: Logit,
        R: Send + Default,
        F: Fn(usize, RowStats) -> Result<R, BnfError> + Sync,
    {
        check::len("row records", self.rows(), records.len())?;
        for_row_runs(records, 1, logits.len(), |first, run| {
            for (i, rec) in run.iter_mut().enumerate() {
                let r = first + i;
                *rec = if self.is_scored(r) {
                    per_row(r, self.row_stats(logits, r)?)?
                } else {
                    R::default()
                };
            }
            Ok(())
        })
    }

    /// Pass 2 into a separate buffer: row `r` of `grad` gets `w(r) * (pi - onehot)`, where
    /// `w` returns the row's stats and weight (`None` for a masked row: a zero row). Every
    /// row's weight and statistics are checked before the first row is written, so on error
    /// `grad` is untouched.
    pub(crate) fn grad_pass<T, F>(&self, logits: &[T], grad: &mut [T], w: F) -> Result<(), BnfError>
    where
        T: Logit,
        F: Fn(usize) -> Option<(RowStats, f32)> + Sync,
    {
        check::len("grad", logits.len(), grad.len())?;
        check::grad_rows_by::<T, _>(self.vocab, self.targets, &w)?;
        let v = self.vocab;
        for_row_runs(grad, v, logits.len(), |first, run| {
            for (i, out) in run.chunks_exact_mut(v).enumerate() {
                let r = first + i;
                match w(r) {
                    Some((stats, wr)) => {
                        let z = &logits[r * v..(r + 1) * v];
                        row_grad(z, self.targets[r] as usize, &stats, wr, out)
                            .map_err(|e| e.at_row(r))?;
                    }
                    None => out.fill(T::from_f32(0.0)),
                }
            }
            Ok(())
        })
    }

    /// Pass 2 over the logits themselves; the same bits as [`Batch::grad_pass`], and the same
    /// checks first, so on error the logits are untouched.
    pub(crate) fn grad_pass_in_place<T, F>(&self, logits: &mut [T], w: F) -> Result<(), BnfError>
    where
        T: Logit,
        F: Fn(usize) -> Option<(RowStats, f32)> + Sync,
    {
        check::grad_rows_by::<T, _>(self.vocab, self.targets, &w)?;
        let v = self.vocab;
        let cost = logits.len();
        for_row_runs(logits, v, cost, |first, run| {
            for (i, z) in run.chunks_exact_mut(v).enumerate() {
                let r = first + i;
                match w(r) {
                    Some((stats, wr)) => row_grad_in_place(z, self.targets[r] as usize, &stats, wr)
                        .map_err(|e| e.at_row(r))?,
                    None => z.fill(T::from_f32(0.0)),
                }
            }
            Ok(())
        })
    }
}

/// Where the fused pass reads each row and writes its gradient.
pub(crate) enum RowIo<'a, T> {
    /// Read the logits, write the gradient into a separate buffer of the same shape.
    Separate(&'a [T], &'a mut [T]),
    /// Write the gradient over the logits.
    InPlace(&'a mut [T]),
}

impl Batch<'_> {
    /// Both passes of a row-local objective with one `exp` per logit. Pass 1 checks every
    /// scored row (the batch's checks, then `check(r)`) and finds its maximum, writing nothing;
    /// then `results_fit(maxes)` (each row's maximum, 0 for masked rows) says whether the
    /// results will fit their types, with the logits still unread beyond that. So any error
    /// leaves every buffer untouched. Pass 2, row by row: the row's statistics with
    /// its exponentials kept in a row-long scratch (one per thread, never `rows x vocab`),
    /// `records[r] = per_row(r, stats)`, and the gradient `w (pi - onehot)` with
    /// `weight(r, &records[r])` written from the scratch; masked rows get `R::default()` and a
    /// zero row. The same bits as [`Batch::stats_pass`] followed by [`Batch::grad_pass`].
    pub(crate) fn fused_pass<T, R, C, F, W, X>(
        &self,
        io: RowIo<'_, T>,
        records: &mut [R],
        check: C,
        results_fit: X,
        per_row: F,
        weight: W,
    ) -> Result<(), BnfError>
    where
        T: Logit,
        R: Send + Default,
        C: Fn(usize) -> Result<(), BnfError> + Sync,
        X: FnOnce(&[T], &[f32]) -> Result<(), BnfError>,
        F: Fn(usize, RowStats) -> Result<R, BnfError> + Sync,
        W: Fn(usize, &R) -> Option<(RowStats, f32)> + Sync,
    {
        check::len("row records", self.rows(), records.len())?;
        let logits: &[T] = match &io {
            RowIo::Separate(z, _) => z,
            RowIo::InPlace(z) => z,
        };
        let mut maxes = alloc::vec![0.0f32; self.rows()];
        for_row_runs(&mut maxes, 1, logits.len(), |first, run| {
            for (i, m) in run.iter_mut().enumerate() {
                let r = first + i;
                if self.is_scored(r) {
                    *m = self.row_max(logits, r)?;
                    check(r)?;
                }
            }
            Ok(())
        })?;
        results_fit(logits, &maxes)?;
        let v = self.vocab;
        let cost = logits.len();
        // One row: statistics into the scratch, the record, then the gradient row.
        let row = |r: usize, z: &[T], exps: &mut [f32], rec: &mut R| {
            if !self.is_scored(r) {
                *rec = R::default();
                return Ok(None);
            }
            let y = self.targets[r] as usize;
            let stats = row_stats_from_max(z, y, maxes[r], Some(exps)).map_err(|e| e.at_row(r))?;
            *rec = per_row(r, stats)?;
            Ok(weight(r, rec))
        };
        let write = |r: usize, exps: &[f32], w: Option<(RowStats, f32)>, out: &mut [T]| match w {
            Some((stats, wr)) => {
                row_grad_from_exps(exps, self.targets[r] as usize, &stats, wr, out)
            }
            None => out.fill(T::from_f32(0.0)),
        };
        match io {
            RowIo::Separate(logits, grad) => {
                check::len("grad", logits.len(), grad.len())?;
                for_row_runs2(grad, v, records, 1, cost, |first, outs, recs| {
                    let mut exps = alloc::vec![0.0f32; v];
                    for (i, (out, rec)) in outs.chunks_exact_mut(v).zip(recs).enumerate() {
                        let r = first + i;
                        let w = row(r, self.row(logits, r), &mut exps, rec)?;
                        write(r, &exps, w, out);
                    }
                    Ok(())
                })
            }
            RowIo::InPlace(logits) => {
                for_row_runs2(logits, v, records, 1, cost, |first, zs, recs| {
                    let mut exps = alloc::vec![0.0f32; v];
                    for (i, (z, rec)) in zs.chunks_exact_mut(v).zip(recs).enumerate() {
                        let r = first + i;
                        let w = row(r, z, &mut exps, rec)?;
                        write(r, &exps, w, z);
                    }
                    Ok(())
                })
            }
        }
    }
}

/// Sum `f(r)` over rows in row order, in `f64`, and divide by `n`: the batch mean over
/// responses, bitwise independent of threads.
pub(crate) fn mean_over(n: usize, rows: usize, f: impl Fn(usize) -> f32) -> f32 {
    if n == 0 {
        return 0.0;
    }
    let total: f64 = (0..rows).map(|r| f(r) as f64).sum();
    (total / n as f64) as f32
}
