//! The checked-in PTX against the names, shapes and codes the crate exports (no GPU needed).

use bnf_kernels::{
    dynamic_shared_bytes, entry_params, launch, naive, status, uses_row_cache, Dtype, BNF_PTX,
    NAIVE_PTX, ROW_CACHE_MAX_BYTES, STATIC_SHARED_BYTES, THREADS,
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
fn launch_asks_for_the_row_in_shared_memory_up_to_the_cap() {
    let small = launch(7, 1000, 4);
    assert_eq!((small.blocks, small.threads), (7, THREADS));
    assert_eq!((small.shared_bytes, small.cached), (4000, 1));
    // Rounded up to whole 16-byte packs.
    assert_eq!(launch(1, 1001, 2).shared_bytes, 2016);
    let edge = launch(1, ROW_CACHE_MAX_BYTES / 2, 2);
    assert_eq!((edge.shared_bytes, edge.cached), (ROW_CACHE_MAX_BYTES, 1));
    let big = launch(3, 128_256, 2);
    assert_eq!((big.shared_bytes, big.cached), (ROW_CACHE_MAX_BYTES, 1));
    assert_eq!(launch(1, u32::MAX, 4).shared_bytes, ROW_CACHE_MAX_BYTES);
    // 227 KiB is an sm_90 block's opt-in shared memory; the kernels' static part comes first.
    assert_eq!(ROW_CACHE_MAX_BYTES + STATIC_SHARED_BYTES, 227 * 1024);
}

#[test]
fn only_the_fused_kernel_gets_dynamic_shared_memory_capped_by_the_device() {
    let shape = launch(4, 128_256, 2);
    for d in Dtype::ALL {
        let k = d.kernels();
        assert!(uses_row_cache(k.bnf_fwd_bwd));
        assert_eq!(
            dynamic_shared_bytes(k.bnf_fwd_bwd, &shape, 1 << 20),
            ROW_CACHE_MAX_BYTES
        );
        // An sm_86 device: 99 KiB opt-in less the static part, rounded down to whole packs.
        let sm86 = 99 * 1024 - STATIC_SHARED_BYTES - 8;
        assert_eq!(
            dynamic_shared_bytes(k.bnf_fwd_bwd, &shape, sm86),
            sm86 / 16 * 16
        );
        for other in [k.row_stats, k.row_grad, k.gather_logp, k.naive_log_softmax] {
            assert!(!uses_row_cache(other));
            assert_eq!(dynamic_shared_bytes(other, &shape, 1 << 20), 0);
        }
    }
    assert_eq!(
        dynamic_shared_bytes(naive::OTHER_SUM, &naive::per_row(3), 1 << 20),
        0
    );
}

/// The static shared memory each kernel of bnf.ptx declares (its reductions' buffers) is
/// `STATIC_SHARED_BYTES` (row_grad reduces nothing), which the opt-in limit leaves room for.
#[test]
fn static_shared_memory_is_what_the_ptx_declares() {
    let entries: Vec<&str> = BNF_PTX.split(".entry ").skip(1).collect();
    assert_eq!(entries.len(), 12);
    for entry in entries {
        let name = entry.split('(').next().unwrap();
        let bytes: u32 = entry
            .lines()
            .filter(|l| l.trim_start().starts_with(".shared"))
            .map(|l| {
                let size = l.rsplit('[').next().unwrap().trim_end_matches("];");
                size.parse::<u32>().unwrap()
            })
            .sum();
        let want = if name.starts_with("row_grad_") {
            0
        } else {
            STATIC_SHARED_BYTES
        };
        assert_eq!(bytes, want, "{name}");
    }
    assert!(BNF_PTX.contains(".extern .shared .align 16 .b8 bnf_row_cache[];"));
    assert!(BNF_PTX.contains("%dynamic_smem_size"));
}

/// The row passes use 16-byte global loads and streaming 16-byte stores.
#[test]
fn rows_are_read_and_written_in_16_byte_packs() {
    for d in Dtype::ALL {
        let k = d.kernels();
        for (name, load, store) in [
            (k.bnf_fwd_bwd, true, true),
            (k.row_grad, true, true),
            (k.row_stats, true, false),
            (k.gather_logp, true, false),
        ] {
            let body = BNF_PTX
                .split(".entry ")
                .find(|e| e.starts_with(&format!("{name}(")))
                .unwrap();
            assert_eq!(body.contains("ld.global.v4.u32"), load, "{name}");
            assert_eq!(body.contains("st.global.cs.v4.u32"), store, "{name}");
        }
    }
}

#[test]
fn dtype_names_round_trip() {
    for d in Dtype::ALL {
        assert_eq!(Dtype::from_name(d.name()), Some(d));
        assert!(d.kernels().bnf_fwd_bwd.ends_with(d.name()));
    }
    assert_eq!(Dtype::from_name("f64"), None);
}
