//! Launch shapes: one block of [`THREADS`] threads per row, and how much of a row the fused
//! kernel keeps in dynamic shared memory (that part is read from device memory once; the rest
//! twice).

/// Threads per block of every kernel (`BNF_THREADS` in `kernels/cuda/common.cuh`).
pub const THREADS: u32 = 256;

/// Static shared memory of each kernel of [`crate::BNF_PTX`] (its reductions: 256 `f32` and
/// 512 `f64`), as the PTX declares it (a test reads it there).
pub const STATIC_SHARED_BYTES: u32 = 5 * 1024;

/// Shared memory a block may use without opting in (`cuFuncSetAttribute`).
pub const DEFAULT_SHARED_BYTES: u32 = 48 * 1024;

/// The most dynamic shared memory [`launch`] asks for: what a compute capability 9.0 device
/// (H100, H200) lets one block opt in to (227 KiB) less [`STATIC_SHARED_BYTES`]. The driver
/// caps it at the device's own limit ([`dynamic_shared_bytes`]); the kernel reads the size it
/// got (`%dynamic_smem_size`), so any size is safe.
pub const ROW_CACHE_MAX_BYTES: u32 = 227 * 1024 - STATIC_SHARED_BYTES;

/// How to launch a row kernel over a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Grid size in x: one block per row.
    pub blocks: u32,
    /// Block size in x: [`THREADS`].
    pub threads: u32,
    /// Dynamic shared memory bytes asked for: the row's size rounded up to 16 bytes, at most
    /// [`ROW_CACHE_MAX_BYTES`] (a longer row keeps its first part there).
    pub shared_bytes: u32,
    /// The kernels' `cached` argument: 1, keep what fits of the row in `shared_bytes`.
    pub cached: i32,
}

/// The launch shape for `rows` rows of `vocab` elements of `elem_bytes` bytes each.
pub fn launch(rows: u32, vocab: u32, elem_bytes: u32) -> Launch {
    let row_bytes = (u64::from(vocab) * u64::from(elem_bytes)).next_multiple_of(16);
    let shared_bytes = row_bytes.min(u64::from(ROW_CACHE_MAX_BYTES)) as u32;
    Launch {
        blocks: rows,
        threads: THREADS,
        shared_bytes,
        cached: i32::from(shared_bytes > 0),
    }
}

/// Whether kernel `name` keeps rows in dynamic shared memory: only the fused `bnf_fwd_bwd_*`
/// reads a row twice; the others read it once and get no dynamic shared memory.
pub fn uses_row_cache(name: &str) -> bool {
    name.starts_with("bnf_fwd_bwd_")
}

/// The dynamic shared memory a launch of kernel `name` with `shape` gets on a device where
/// that kernel may use at most `device_max` bytes (after opting in): `shape.shared_bytes`
/// capped at `device_max` and rounded down to whole 16-byte packs; 0 for a kernel that keeps
/// no rows ([`uses_row_cache`]).
pub fn dynamic_shared_bytes(name: &str, shape: &Launch, device_max: u32) -> u32 {
    if !uses_row_cache(name) {
        return 0;
    }
    shape.shared_bytes.min(device_max) / 16 * 16
}
