//! Data parallelism for the layers that are not matrix products (attention, GELU): a layer's
//! buffers are cut at the same batch (or element) boundaries into one part per thread, and each
//! part runs on its own scoped thread, the last on the caller. Every output element is computed
//! by exactly one thread with the same arithmetic as on one thread, so results are bitwise the
//! same for any thread count. (Matrix products have their own threads, in `matrixmultiply`.)

use std::sync::atomic::{AtomicUsize, Ordering};

/// The thread count set by [`set_threads`]; 0 = the machine's available parallelism.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads the layers use (`0`: the machine's available parallelism). A program
/// that runs several models at once (the experiment's parallel runs) divides the cores here.
pub fn set_threads(threads: usize) {
    THREADS.store(threads, Ordering::Relaxed);
}

/// The thread count the layers use now (at least 1).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// How many of `items` units (batches, elements) each part takes, for parts of at least
/// `min_items`: `items` split over [`threads`] parts, or one part when that would be smaller.
pub fn part_len(items: usize, min_items: usize) -> usize {
    let parts = threads().min(items / min_items.max(1)).max(1);
    items.div_ceil(parts).max(1)
}

/// Runs `f` on every part, each on its own scoped thread but the last, which runs on the
/// caller.
pub fn for_each_part<P: Send>(parts: Vec<P>, f: impl Fn(P) + Sync) {
    let mut parts = parts;
    let Some(last) = parts.pop() else { return };
    if parts.is_empty() {
        return f(last);
    }
    let f = &f;
    std::thread::scope(|s| {
        for p in parts {
            s.spawn(move || f(p));
        }
        f(last);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_every_item_once() {
        for items in [1usize, 2, 3, 7, 16, 1000] {
            for min in [1usize, 4, 10_000] {
                let len = part_len(items, min);
                let mut seen = vec![0u8; items];
                let parts: Vec<&mut [u8]> = seen.chunks_mut(len).collect();
                assert!(parts.len() <= threads().max(1));
                for_each_part(parts, |p| p.iter_mut().for_each(|x| *x += 1));
                assert!(seen.iter().all(|&x| x == 1), "items {items} min {min}");
            }
        }
    }
}
