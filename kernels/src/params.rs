//! Kernel signatures read from the PTX itself, so a launcher can check that it passes as many
//! arguments, of the same sizes, as the kernel declares (a mismatch on a GPU is silent garbage).

/// The byte size of each parameter of kernel `name` in `ptx`, in order; `None` when `ptx` has
/// no such `.entry` or declares a parameter type this parser does not know.
pub fn entry_params(ptx: &str, name: &str) -> Option<Vec<u32>> {
    let header = format!(".entry {name}(");
    let mut lines = ptx.lines().skip_while(|l| !l.trim_end().ends_with(&header));
    lines.next()?;
    let mut sizes = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.starts_with(')') {
            return Some(sizes);
        }
        if line.contains('[') {
            return None; // an array (by-value struct) parameter: not used by these kernels
        }
        // `.param .u64 .ptr .align 1 name,`: the first scalar type token gives the size.
        let size = line.split_whitespace().skip(1).find_map(scalar_bytes)?;
        sizes.push(size);
    }
    None
}

fn scalar_bytes(token: &str) -> Option<u32> {
    match token {
        ".u8" | ".s8" | ".b8" => Some(1),
        ".u16" | ".s16" | ".b16" | ".f16" => Some(2),
        ".u32" | ".s32" | ".b32" | ".f32" => Some(4),
        ".u64" | ".s64" | ".b64" | ".f64" => Some(8),
        _ => None,
    }
}
