//! The CUDA sources mirror bnf-core by name (DESIGN.md section 3): each core function the
//! kernels reimplement is defined under the same name, so a reader finds one from the other.

const SOURCES: [&str; 4] = [
    include_str!("../cuda/common.cuh"),
    include_str!("../cuda/row.cuh"),
    include_str!("../cuda/target.cuh"),
    include_str!("../cuda/bnf.cu"),
];

/// Core's name and where it lives in core.
const MIRRORED: [(&str, &str); 11] = [
    ("row_stats", "row.rs"),
    ("row_grad", "row.rs"),
    ("check_grad_inputs", "row.rs"),
    ("exp_clamped", "row.rs"),
    ("log_odds_y", "row.rs (RowStats)"),
    ("others_mean_logp", "row.rs (RowStats)"),
    ("check_ref_logp", "target.rs"),
    ("bnf_scalars", "target.rs"),
    ("log1mexp", "math.rs"),
    ("log_odds", "math.rs"),
    ("RowStats", "row.rs"),
];

#[test]
fn every_mirrored_core_function_is_defined_under_its_name() {
    for (name, core_file) in MIRRORED {
        let defined = SOURCES.iter().flat_map(|s| s.lines()).any(|l| {
            let l = l.trim_start();
            !l.starts_with("//")
                && (l.contains(&format!(" {name}(")) || l.starts_with(&format!("struct {name} ")))
        });
        assert!(
            defined,
            "core's {name} (core/src/{core_file}) has no namesake in kernels/cuda"
        );
    }
}
