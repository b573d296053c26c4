//! How rows are spread over threads. Without the `parallel` feature everything runs on the
//! calling thread. With it, a buffer with one fixed-size record per row is cut into contiguous
//! runs of rows: the first on the calling thread, each other on a scoped thread of its own. (No
//! persistent pool: its workers would run closures that borrow the caller's buffers, which
//! needs `unsafe` lifetime erasure; a host with a pool runs the work on it through
//! `set_parallel_runner`.) Each row's result depends only on that row, and batch sums are taken
//! afterwards in row order, so the thread count never changes a bit.

use crate::error::BnfError;

#[cfg(feature = "parallel")]
static THREADS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Below this many logits in a batch, threads cost more than they save.
#[cfg(feature = "parallel")]
const MIN_PARALLEL_ELEMENTS: usize = 1 << 16;

/// Each thread gets at least this many logits, whatever [`set_num_threads`] says: a thread
/// per handful of rows would cost more to start than its rows take.
#[cfg(feature = "parallel")]
const MIN_ELEMENTS_PER_THREAD: usize = 1 << 14;

/// Runs `tasks` independent tasks in parallel: `runner(tasks, &task)` calls `task(i)` for the
/// `i` in `0..tasks` and returns when every call has returned. A runner that skips a task, or
/// calls one twice, costs time, never a wrong result: a skipped task is run afterwards on the
/// calling thread, and a task runs its rows only the first time it is called.
#[cfg(feature = "parallel")]
pub type ParallelRunner = fn(tasks: usize, task: &(dyn Fn(usize) + Sync));

#[cfg(feature = "parallel")]
static RUNNER: std::sync::RwLock<Option<ParallelRunner>> = std::sync::RwLock::new(None);

/// Run batches' parallel work through `runner` instead of core's own scoped threads (`None`:
/// back to them). For a host with a thread pool of its own, e.g. a PyTorch process, whose
/// OpenMP workers spin after each op and would fight freshly started threads for the cores:
/// the work then runs on those workers. The number of tasks is still [`num_threads`]'s choice,
/// and results stay bitwise identical (each task owns fixed rows). A task that panics has its
/// panic resumed on the calling thread after the runner returns.
#[cfg(feature = "parallel")]
pub fn set_parallel_runner(runner: Option<ParallelRunner>) {
    match RUNNER.write() {
        Ok(mut r) => *r = runner,
        Err(poisoned) => *poisoned.into_inner() = runner,
    }
}

#[cfg(feature = "parallel")]
fn parallel_runner() -> Option<ParallelRunner> {
    match RUNNER.read() {
        Ok(r) => *r,
        Err(poisoned) => *poisoned.into_inner(),
    }
}

/// Set how many threads batch functions may use (`0`: all available cores, the default).
/// Results are bitwise identical for every value. A batch uses at most one thread per row
/// and per 16384 logits, and a thread the system refuses to start is replaced by running
/// its rows on the calling thread, so no value is an error. Without the `parallel` feature
/// this is a no-op and everything runs on the calling thread.
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
        // One slot per run, so that a run whose thread the system refuses to start (its thread
        // limit) is still there to be done on this thread: the same rows, so the same bits.
        let slots: std::vec::Vec<_> = a
            .chunks_mut(rows_per * per_a)
            .zip(b.chunks_mut(rows_per * per_b))
            .map(|run| std::sync::Mutex::new(Some(run)))
            .collect();
        // Run `i`'s rows, unless they were taken before (`None`).
        let take = |i: usize| {
            let run = slots[i].lock().map(|mut s| s.take()).ok().flatten();
            run.map(|(ca, cb)| work(i * rows_per, ca, cb))
        };
        if let Some(runner) = parallel_runner() {
            return run_with(runner, slots.len(), &take);
        }
        let take = |i: usize| take(i).expect("each run is taken once");
        std::thread::scope(|scope| {
            // Runs 1.. on threads of their own, run 0 on this thread meanwhile: `threads - 1`
            // threads started per call, and the caller works instead of waiting.
            let runs: std::vec::Vec<_> = (1..slots.len())
                .map(|i| {
                    let take = &take;
                    match spawn(scope, move || take(i)) {
                        Ok(h) => Run::Thread(h),
                        Err(_) => Run::Refused(i),
                    }
                })
                .collect();
            let mut first = take(0);
            // Then in row order (a refused run's rows on this thread): the first error found
            // is the lowest row's.
            for run in runs {
                let r = match run {
                    Run::Thread(h) => h.join().expect("a row worker panicked"),
                    Run::Refused(i) => take(i),
                };
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

/// Every run through `runner`, then on this thread each run it skipped; the lowest run's error.
#[cfg(feature = "parallel")]
fn run_with<F>(runner: ParallelRunner, runs: usize, take: &F) -> Result<(), BnfError>
where
    F: Fn(usize) -> Option<Result<(), BnfError>> + Sync,
{
    type Outcome = std::thread::Result<Option<Result<(), BnfError>>>;
    let results: std::vec::Vec<std::sync::Mutex<Option<Outcome>>> =
        (0..runs).map(|_| std::sync::Mutex::new(None)).collect();
    runner(runs, &|i| {
        if let Some(slot) = results.get(i) {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| take(i)));
            if let Ok(mut s) = slot.lock() {
                if s.is_none() || matches!(*s, Some(Ok(None))) {
                    *s = Some(out);
                }
            }
        }
    });
    let mut first = Ok(());
    for (i, slot) in results.into_iter().enumerate() {
        let out = slot.into_inner().ok().flatten();
        let r = match out {
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            Some(Ok(Some(r))) => r,
            // Skipped by the runner: its rows are still there to run.
            Some(Ok(None)) | None => take(i).unwrap_or(Ok(())),
        };
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// Start `f` on a scoped thread; the system may refuse (its thread limit).
#[cfg(feature = "parallel")]
fn spawn<'scope, 'env, F>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    f: F,
) -> std::io::Result<std::thread::ScopedJoinHandle<'scope, Result<(), BnfError>>>
where
    F: FnOnce() -> Result<(), BnfError> + Send + 'scope,
{
    #[cfg(test)]
    if tests::REFUSE_SPAWN.load(core::sync::atomic::Ordering::Relaxed) {
        return Err(std::io::Error::other("refused by the test"));
    }
    std::thread::Builder::new().spawn_scoped(scope, f)
}

/// `threads` limited to one per row and per [`MIN_ELEMENTS_PER_THREAD`] logits, at least 1.
#[cfg(feature = "parallel")]
fn capped(threads: usize, rows: usize, cost: usize) -> usize {
    threads.min(rows).min(cost / MIN_ELEMENTS_PER_THREAD).max(1)
}

/// A run of rows: on its own thread, or (its thread refused by the system) still to be done
/// on the calling thread.
#[cfg(feature = "parallel")]
enum Run<'scope> {
    Thread(std::thread::ScopedJoinHandle<'scope, Result<(), BnfError>>),
    Refused(usize),
}

#[allow(unused_variables)]
fn threads_for(rows: usize, cost: usize) -> usize {
    #[cfg(feature = "parallel")]
    {
        if cost < MIN_PARALLEL_ELEMENTS {
            return 1;
        }
        capped(num_threads(), rows, cost)
    }
    #[cfg(not(feature = "parallel"))]
    {
        1
    }
}

#[cfg(all(test, feature = "parallel"))]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicBool, Ordering};

    /// Makes every spawn fail, as a system at its thread limit would.
    pub(super) static REFUSE_SPAWN: AtomicBool = AtomicBool::new(false);

    const ROWS: usize = 1000;
    const PER_ROW: usize = 4;

    /// Every record gets its row's index; row 700 and row 300 fail, so the error must be 300's.
    fn run(threads: usize) -> (std::vec::Vec<usize>, Result<(), BnfError>) {
        set_num_threads(threads);
        let mut data = std::vec![0usize; ROWS * PER_ROW];
        let cost = 1 << 24; // enough logits for the most threads the cap allows
        let r = for_row_runs(&mut data, PER_ROW, cost, |first, run| {
            let mut err = Ok(());
            for (k, rec) in run.chunks_mut(PER_ROW).enumerate() {
                let row = first + k;
                rec.fill(row + 1);
                if (row == 300 || row == 700) && err.is_ok() {
                    err = Err(BnfError::EmptyResponse { response: row });
                }
            }
            err
        });
        (data, r)
    }

    // The tests that set the thread count, the refusal flag or the runner (all global): another
    // test changing them mid-run would not change its results.
    #[test]
    fn every_thread_count_and_refused_spawns_give_the_same_result() {
        let want: std::vec::Vec<usize> = (0..ROWS * PER_ROW).map(|i| i / PER_ROW + 1).collect();
        let err = Err(BnfError::EmptyResponse { response: 300 });
        for threads in [1, 2, 3, 7, 64, ROWS + 1, usize::MAX] {
            assert_eq!(run(threads), (want.clone(), err), "{threads} threads");
        }
        REFUSE_SPAWN.store(true, Ordering::Relaxed);
        let refused = run(8);
        REFUSE_SPAWN.store(false, Ordering::Relaxed);
        assert_eq!(refused, (want, err), "every spawn refused");
        set_num_threads(0);
    }

    /// Runners that run tasks backwards, skip the first, or run every task twice: the same
    /// records and the same (lowest-row) error as core's own threads.
    #[test]
    fn external_runners_give_the_same_result() {
        fn backwards(tasks: usize, task: &(dyn Fn(usize) + Sync)) {
            (0..tasks).rev().for_each(task);
        }
        fn skips_first(tasks: usize, task: &(dyn Fn(usize) + Sync)) {
            (1..tasks).for_each(task);
        }
        fn twice(tasks: usize, task: &(dyn Fn(usize) + Sync)) {
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| (0..tasks).for_each(task));
                }
            });
        }
        let want: std::vec::Vec<usize> = (0..ROWS * PER_ROW).map(|i| i / PER_ROW + 1).collect();
        let err = Err(BnfError::EmptyResponse { response: 300 });
        for runner in [backwards as ParallelRunner, skips_first, twice] {
            set_parallel_runner(Some(runner));
            let got = run(8);
            set_parallel_runner(None);
            assert_eq!(got, (want.clone(), err));
        }
        set_num_threads(0);
    }

    #[test]
    fn threads_are_capped_by_rows_and_work() {
        assert_eq!(capped(usize::MAX, 10, 1 << 30), 10);
        assert_eq!(capped(usize::MAX, 1 << 20, 1 << 16), 4);
        assert_eq!(capped(3, 1 << 20, 1 << 30), 3);
        assert_eq!(capped(usize::MAX, 1 << 20, 100), 1);
        assert_eq!(capped(0, 5, 1 << 30), 1);
    }
}
