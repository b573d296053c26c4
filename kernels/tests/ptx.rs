//! The checked-in PTX against the names, shapes and codes the crate exports (no GPU needed).

use bnf_kernels::{
    entry_params, launch, naive, status, Dtype, BNF_PTX, NAIVE_PTX, ROW_CACHE_MAX_BYTES, THREADS,
};

const COMMON: &str = include_str!("../cuda/common.cuh");

fn has_entry(ptx: &str, name: &str) -> bool {
    ptx.contains(&format!(".visible .entry {name}("))
}

fn define(name: &str) -> i64 {
    let line = COMMON
        .lines()
        .find(|l| l.starts_with(&format!("#define {name} ")))
        .unwrap_or_else(|| panic!("{name} not defined in common.cuh"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn every_named_kernel_is_in_its_module() {
    for d in Dtype::ALL {
        let k = d.kernels();
        for name in [k.row_stats, k.row_grad, k.bnf_fwd_bwd, k.gather_logp] {
            assert!(has_entry(BNF_PTX, name), "{name} missing from bnf.ptx");
        }
        for name in [k.naive_log_softmax, k.naive_log_softmax_bwd] {
            assert!(has_entry(NAIVE_PTX, name), "{name} missing from naive.ptx");
        }
    }
    for name in [
        naive::GATHER,
        naive::OTHER_SUM,
        naive::SCALARS,
        naive::DLOGP,
    ] {
        assert!(has_entry(NAIVE_PTX, name), "{name} missing from naive.ptx");
    }
}

/// Byte sizes of the parameters as the doc comments of `Kernels` and `naive` list them
/// (pointers 8, `unsigned`/`int`/`float` 4), against what the PTX declares.
#[test]
fn kernel_signatures_are_the_documented_ones() {
    let (p, u) = (8u32, 4u32);
    for d in Dtype::ALL {
        let k = d.kernels();
        let bnf = [
            (k.row_stats, vec![p, p, p, u, u, p, p]),
            (k.row_grad, vec![p, p, p, p, p, p, u, u, p]),
            (k.bnf_fwd_bwd, vec![p, p, p, p, p, p, u, u, u, p, p]),
            (k.gather_logp, vec![p, p, p, u, u, p, p, p]),
        ];
        for (name, want) in bnf {
            assert_eq!(entry_params(BNF_PTX, name), Some(want), "{name}");
        }
        assert_eq!(
            entry_params(NAIVE_PTX, k.naive_log_softmax),
            Some(vec![p, p, u])
        );
        assert_eq!(
            entry_params(NAIVE_PTX, k.naive_log_softmax_bwd),
            Some(vec![p, p, u, p])
        );
    }
    let naive = [
        (naive::GATHER, vec![p, p, u, u, p]),
        (naive::OTHER_SUM, vec![p, p, u, p]),
        (naive::SCALARS, vec![p, p, p, p, u, p, p, p]),
        (naive::DLOGP, vec![p, p, p, p, p, u, u, p]),
    ];
    for (name, want) in naive {
        assert_eq!(entry_params(NAIVE_PTX, name), Some(want), "{name}");
    }
    assert_eq!(entry_params(BNF_PTX, "no_such_kernel"), None);
    assert_eq!(entry_params(BNF_PTX, "row_stats_f3"), None);
}

#[test]
fn entry_params_reads_qualified_and_rejects_unknown_parameters() {
    let ptx =
        ".visible .entry k(\n\t.param .u64 .ptr .align 1 k_param_0,\n\t.param .f32 k_param_1\n)\n";
    assert_eq!(entry_params(ptx, "k"), Some(vec![8, 4]));
    let array = ".visible .entry k(\n\t.param .align 8 .b8 k_param_0[16]\n)\n";
    assert_eq!(entry_params(array, "k"), None);
    let unterminated = ".visible .entry k(\n\t.param .u32 k_param_0\n";
    assert_eq!(entry_params(unterminated, "k"), None);
}

#[test]
fn naive_launch_shapes_cover_every_row() {
    assert_eq!(naive::per_row(5).blocks, 5);
    assert_eq!(naive::per_row(5).shared_bytes, 0);
    for rows in [1, THREADS - 1, THREADS, THREADS + 1, 100_000] {
        let l = naive::per_thread(rows);
        assert!(l.blocks * l.threads >= rows && (l.blocks - 1) * l.threads < rows);
    }
}

#[test]
fn ptx_targets_compute_80_with_an_isa_a_cuda_13_0_driver_accepts() {
    for ptx in [BNF_PTX, NAIVE_PTX] {
        assert!(ptx.lines().any(|l| l == ".target sm_80"));
        let v = ptx.lines().find(|l| l.starts_with(".version ")).unwrap();
        let (major, minor) = v[9..].split_once('.').unwrap();
        let isa = (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap());
        assert!(
            isa <= (9, 0),
            "PTX ISA {v} is newer than a CUDA 13.0 driver accepts"
        );
    }
}

#[test]
fn no_atomics_in_the_kernels() {
    for ptx in [BNF_PTX, NAIVE_PTX] {
        for line in ptx.lines() {
            // The opcode is the first token, or the second after a predicate guard `@%p1`.
            let mut tokens = line.split_whitespace();
            let first = tokens.next().unwrap_or("");
            let op = if first.starts_with('@') {
                tokens.next().unwrap_or("")
            } else {
                first
            };
            assert!(
                !op.starts_with("atom.") && !op.starts_with("red."),
                "atomic instruction in PTX: {line}"
            );
        }
    }
}

#[test]
fn constants_match_the_cuda_header() {
    assert_eq!(define("BNF_THREADS"), i64::from(THREADS));
    assert_eq!(define("BNF_OK"), i64::from(status::OK));
    assert_eq!(
        define("BNF_TARGET_OUT_OF_RANGE"),
        i64::from(status::TARGET_OUT_OF_RANGE)
    );
    assert_eq!(
        define("BNF_INVALID_WEIGHT"),
        i64::from(status::INVALID_WEIGHT)
    );
    assert_eq!(
        define("BNF_NON_FINITE_LOGITS"),
        i64::from(status::NON_FINITE_LOGITS)
    );
    assert_eq!(
        define("BNF_INVALID_REF_LOGP"),
        i64::from(status::INVALID_REF_LOGP)
    );
    assert_eq!(
        define("BNF_INVALID_STATS"),
        i64::from(status::INVALID_STATS)
    );
}

#[test]
fn launch_caches_rows_that_fit_and_only_those() {
    let small = launch(7, 1000, 4);
    assert_eq!((small.blocks, small.threads), (7, THREADS));
    assert_eq!((small.shared_bytes, small.cached), (4000, 1));
    let edge = launch(1, ROW_CACHE_MAX_BYTES / 2, 2);
    assert_eq!((edge.shared_bytes, edge.cached), (ROW_CACHE_MAX_BYTES, 1));
    let big = launch(3, 128_256, 2);
    assert_eq!((big.shared_bytes, big.cached), (0, 0));
    assert_eq!(launch(1, u32::MAX, 4).cached, 0);
}

#[test]
fn dtype_names_round_trip() {
    for d in Dtype::ALL {
        assert_eq!(Dtype::from_name(d.name()), Some(d));
        assert!(d.kernels().bnf_fwd_bwd.ends_with(d.name()));
    }
    assert_eq!(Dtype::from_name("f64"), None);
}
