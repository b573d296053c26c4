//! The kernels mirror `bnf-core` by name; the constants their rules share are held equal here:
//! the reference log-prob tolerance, the floor of the logit differences fed to `exp`, and the
//! per-row status codes, each standing for the core error its defect gets (the GPU driver's
//! `status_error` maps them back; its tests check that mapping against core's checks).

use bnf_kernels::status;

/// The value of `#define NAME VALUE` in one of the CUDA headers, as text.
fn define(name: &str) -> String {
    let sources = [
        include_str!("../cuda/common.cuh"),
        include_str!("../cuda/target.cuh"),
        include_str!("../cuda/row.cuh"),
    ];
    let prefix = format!("#define {name} ");
    let line = sources
        .iter()
        .flat_map(|s| s.lines())
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{name} is not defined in kernels/cuda"));
    line[prefix.len()..].trim().to_string()
}

/// A `#define`d float literal (`1e-3f`, `(-3.40282347e38f)`) as `f32`.
fn float(name: &str) -> f32 {
    let v = define(name);
    let v = v.trim_start_matches('(').trim_end_matches(')');
    v.trim_end_matches('f').parse().unwrap()
}

#[test]
fn the_reference_tolerance_is_cores() {
    assert_eq!(
        float("BNF_REF_LOGP_TOLERANCE"),
        bnf_core::REF_LOGP_TOLERANCE
    );
}

#[test]
fn the_exp_floor_is_cores() {
    assert_eq!(float("BNF_D_FLOOR"), bnf_core::D_FLOOR);
}

#[test]
fn the_status_codes_are_the_headers_and_name_cores_errors() {
    // Each code's name is the core error (`BnfError`) its defect gets, in snake case.
    let codes = [
        ("BNF_OK", status::OK, "Ok"),
        (
            "BNF_TARGET_OUT_OF_RANGE",
            status::TARGET_OUT_OF_RANGE,
            "TargetOutOfRange",
        ),
        (
            "BNF_INVALID_WEIGHT",
            status::INVALID_WEIGHT,
            "InvalidWeight",
        ),
        (
            "BNF_NON_FINITE_LOGITS",
            status::NON_FINITE_LOGITS,
            "NonFiniteLogits",
        ),
        (
            "BNF_INVALID_REF_LOGP",
            status::INVALID_REF_LOGP,
            "InvalidRefLogProb",
        ),
        ("BNF_INVALID_STATS", status::INVALID_STATS, "InvalidStats"),
    ];
    let errors = [
        format!("{:?}", bnf_core::check::target(3, 5)),
        format!("{:?}", bnf_core::check::weight(f32::NAN)),
        format!("{:?}", bnf_core::row_stats(&[f32::NAN, 0.0], 1)),
        format!("{:?}", bnf_core::check::ref_logp(0.5)),
        format!("{:?}", bnf_core::check::stats(&Default::default())),
    ];
    for (i, (name, code, variant)) in codes.into_iter().enumerate() {
        assert_eq!(define(name), code.to_string(), "{name}");
        assert_eq!(code, i as i32, "{name}: codes are numbered in this order");
        if code != status::OK {
            let e = &errors[i - 1];
            assert!(
                e.starts_with(&format!("Err({variant} ")),
                "{name}: core gives {e}"
            );
        }
    }
}
