//! How rows are spread over threads. Without the `parallel` feature everything runs on the
//! calling thread. With it, a buffer with one fixed-size record per row is cut into contiguous
//! runs of rows, one per scoped thread. Each row's result depends only on that row, and batch
//! sums are taken afterwards in row order, so the thread count never changes a bit.

use crate::error::BnfError;

#[cfg(feature = "parallel")]
static THREADS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Below this many logits in a batch, threads cost more than they save.
#[cfg(feature = "parallel")]
const MIN_PARALLEL_ELEMENTS: usize = 1 << 16;

/// Set how many threads batch functions may use (`0`: all available cores, the default).
/// Results are bitwise identical for every value. Without the `parallel` feature this is a
/// no-op and everything runs on the calling thread.
pub fn set_num_threads(n: usize) {
    #[cfg(feature = "parallel")]
    THREADS.store(n, core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "parallel"))]
    let _ = n;
}

/// The number of threads batch functions use now (1 without the `parallel` feature).
pub fn num_threads() -> usize {
    #[cfg(feature = "parallel")]
    {
        match THREADS.load(core::sync::atomic::Ordering::Relaxed) {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
    #[cfg(not(feature = "parallel"))]
    {
        1
    }
}

/// Run `work(first_row, records)` over `data`, which holds `per_row` records for each row,
/// split into contiguous runs of rows. `cost` is the number of logits involved (to decide
/// whether threads are worth it). Returns the error of the lowest failing row.
pub(crate) fn for_row_runs<A, F>(
    data: &mut [A],
    per_row: usize,
    cost: usize,
    work: F,
) -> Result<(), BnfError>
where
    A: Send,
    F: Fn(usize, &mut [A]) -> Result<(), BnfError> + Sync,
{
    let rows = data.len().checked_div(per_row).unwrap_or(0);
    // A zero-sized second buffer: no allocation.
    let mut none = alloc::vec![(); rows];
    for_row_runs2(data, per_row, &mut none, 1, cost, |first, a, _| {
        work(first, a)
    })
}

/// [`for_row_runs`] over two buffers with the same rows: `a` holds `per_a` records per row,
/// `b` `per_b`, and `work(first_row, a_run, b_run)` gets the same rows of both.
// `per_b` only splits `b` between threads, so a build without `parallel` never reads it.
#[cfg_attr(not(feature = "parallel"), allow(unused_variables))]
pub(crate) fn for_row_runs2<A, B, F>(
    a: &mut [A],
    per_a: usize,
    b: &mut [B],
    per_b: usize,
    cost: usize,
    work: F,
) -> Result<(), BnfError>
where
    A: Send,
    B: Send,
    F: Fn(usize, &mut [A], &mut [B]) -> Result<(), BnfError> + Sync,
{
    let rows = a.len().checked_div(per_a).unwrap_or(0);
    let threads = threads_for(rows, cost);
    if threads <= 1 {
        return work(0, a, b);
    }
    #[cfg(feature = "parallel")]
    {
        let rows_per = rows.div_ceil(threads);
        let work = &work;
        std::thread::scope(|scope| {
            let handles: std::vec::Vec<_> = a
                .chunks_mut(rows_per * per_a)
                .zip(b.chunks_mut(rows_per * per_b))
                .enumerate()
                .map(|(i, (ca, cb))| scope.spawn(move || work(i * rows_per, ca, cb)))
                .collect();
            // Join in row order: the first error found is the lowest row's.
            let mut first = Ok(());
            for h in handles {
                let r = h.join().expect("a row worker panicked");
                if first.is_ok() {
                    first = r;
                }
            }
            first
        })
    }
    #[cfg(not(feature = "parallel"))]
    unreachable!()
}

#[allow(unused_variables)]
fn threads_for(rows: usize, cost: usize) -> usize {
    #[cfg(feature = "parallel")]
    {
        if cost < MIN_PARALLEL_ELEMENTS {
            return 1;
        }
        num_threads().min(rows).max(1)
    }
    #[cfg(not(feature = "parallel"))]
    {
        1
    }
}
