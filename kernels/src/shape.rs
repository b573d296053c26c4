//! Launch shapes: one block of [`THREADS`] threads per row, and whether the row fits in shared
//! memory (then the kernel reads it from device memory once).

/// Threads per block of every kernel (`BNF_THREADS` in `kernels/cuda/common.cuh`).
pub const THREADS: u32 = 256;

/// The largest row, in bytes, kept in dynamic shared memory. The kernels use 5 KiB of static
/// shared memory for their reductions, and 48 KiB per block is available without opting in.
pub const ROW_CACHE_MAX_BYTES: u32 = 40 * 1024;

/// How to launch a row kernel over a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Grid size in x: one block per row.
    pub blocks: u32,
    /// Block size in x: [`THREADS`].
    pub threads: u32,
    /// Dynamic shared memory bytes: the row's size when it is cached, else 0.
    pub shared_bytes: u32,
    /// The kernels' `cached` argument (1 when `shared_bytes` holds the row).
    pub cached: i32,
}

/// The launch shape for `rows` rows of `vocab` elements of `elem_bytes` bytes each.
pub fn launch(rows: u32, vocab: u32, elem_bytes: u32) -> Launch {
    let row_bytes = u64::from(vocab) * u64::from(elem_bytes);
    let cached = row_bytes <= u64::from(ROW_CACHE_MAX_BYTES);
    Launch {
        blocks: rows,
        threads: THREADS,
        shared_bytes: if cached { row_bytes as u32 } else { 0 },
        cached: i32::from(cached),
    }
}
