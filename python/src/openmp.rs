//! Core's parallel work on torch's OpenMP team. PyTorch's CPU ops run on libgomp workers that
//! spin for a while after each op; threads that core starts right after would share the cores
//! with them (measured: two threads no faster than one). Given torch's libgomp (already loaded
//! by torch), core's runs are handed to `GOMP_parallel` instead, so the spinning workers pick
//! them up at once. Without it (another OpenMP runtime, or none), core keeps its own threads.

use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use pyo3::prelude::*;

/// libgomp's entry of `#pragma omp parallel`: every thread of a team of `num_threads` calls
/// `f(data)`, and it returns when all have.
type GompParallel = unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, u32, u32);

static GOMP_PARALLEL: OnceLock<GompParallel> = OnceLock::new();

/// Run core's parallel work on the OpenMP team of the libgomp at `path`, if that library is
/// already loaded in this process (it is never loaded here) and exports `GOMP_parallel`.
/// Returns whether it now does.
#[pyfunction]
pub fn use_openmp(path: &str) -> PyResult<bool> {
    let Ok(name) = CString::new(path) else {
        return Ok(false);
    };
    // SAFETY: dlopen with RTLD_NOLOAD only looks up an already loaded library.
    let lib = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    if lib.is_null() {
        return Ok(false);
    }
    // SAFETY: a symbol lookup in a loaded library; the handle is kept (the library stays).
    let sym = unsafe { libc::dlsym(lib, c"GOMP_parallel".as_ptr()) };
    if sym.is_null() {
        return Ok(false);
    }
    // SAFETY: GOMP_parallel has this signature in every libgomp since GCC 4.9.
    let f = unsafe { std::mem::transmute::<*mut c_void, GompParallel>(sym) };
    let _ = GOMP_PARALLEL.set(f);
    bnf_core::set_parallel_runner(Some(run_on_team));
    Ok(true)
}

/// Go back to core's own threads.
#[pyfunction]
pub fn use_own_threads() {
    bnf_core::set_parallel_runner(None);
}

/// What the team's threads share: the tasks, handed out one at a time.
struct Shared<'a> {
    task: &'a (dyn Fn(usize) + Sync),
    next: AtomicUsize,
    tasks: usize,
}

extern "C" fn team_body(data: *mut c_void) {
    // SAFETY: `data` is the `Shared` that `run_on_team` keeps alive until GOMP_parallel returns.
    let shared = unsafe { &*(data as *const Shared<'_>) };
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.tasks {
            break;
        }
        // Core catches a task's panic itself, so nothing unwinds into libgomp.
        (shared.task)(i);
    }
}

/// A core `ParallelRunner` on the OpenMP team: each task is run once, by whichever thread of
/// a team of `tasks` takes it first.
fn run_on_team(tasks: usize, task: &(dyn Fn(usize) + Sync)) {
    let Some(gomp_parallel) = GOMP_PARALLEL.get() else {
        (0..tasks).for_each(task);
        return;
    };
    let shared = Shared {
        task,
        next: AtomicUsize::new(0),
        tasks,
    };
    let team = u32::try_from(tasks).unwrap_or(u32::MAX);
    // SAFETY: `shared` outlives the call, which returns only when every thread is done.
    unsafe {
        gomp_parallel(
            team_body,
            &shared as *const Shared<'_> as *mut c_void,
            team,
            0,
        )
    };
}
