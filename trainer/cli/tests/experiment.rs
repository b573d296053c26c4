//! The `bnf experiment --quick` smoke test (what CI runs): the whole pipeline on the quick plan,
//! then checks that the report and every plot are produced and well formed. It checks the shape
//! of the outputs, not their numbers (the quick plan's numbers mean nothing).

use bnf_cli::experiment::methods::METHODS;
use bnf_cli::experiment::plan::Plan;
use bnf_cli::experiment::{execute, report};

/// The PNGs the report links, with their sizes in pixels.
const PLOTS: &[(&str, (u32, u32))] = &[
    ("figure1.png", (800, 520)),
    ("curves_math.png", (1500, 960)),
    ("curves_style.png", (1500, 960)),
    ("shifts_math.png", (1500, 900)),
    ("shifts_style.png", (1500, 900)),
    ("bins_math.png", (900, 540)),
    ("bins_style.png", (900, 540)),
];

#[test]
fn quick_experiment_writes_a_well_formed_report_and_plots() {
    let dir = std::env::temp_dir().join(format!("bnf-experiment-{}", std::process::id()));
    let dir = dir.to_str().unwrap().to_string();
    let outcome = execute(Plan::quick(), 2).unwrap();
    // Every alignment job ran to the end (the quick plan is too short to collapse or fail).
    assert_eq!(outcome.runs.len(), Plan::quick().align_runs());
    for (job, r) in &outcome.runs {
        assert!(r.error.is_none(), "{job:?}: {:?}", r.error);
        assert!(r.test.is_some() && r.math.is_some() && r.val.is_some());
        assert_eq!(r.curve.len(), Plan::quick().probes + 1);
    }
    let written = report::write(&outcome, &dir).unwrap();
    let md_path = format!("{dir}/results.md");
    assert_eq!(written[0], md_path);
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.contains("Quick smoke run"));
    for id in 'a'..='e' {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| ({id})")))
            .unwrap_or_else(|| panic!("claim ({id}) missing"));
        assert!(
            [
                "held",
                "partly held",
                "did not hold",
                "not tested by this run"
            ]
            .iter()
            .any(|v| line.ends_with(&format!("**{v}** |"))),
            "{line}"
        );
    }
    for section in [
        "## Setup",
        "**collapse**",
        "## Results",
        "## Figures",
        "## Runtime",
        "### The reference models",
        "**target rate**",
        "minus each method",
    ] {
        assert!(md.contains(section), "{section} missing");
    }
    for m in METHODS {
        // In the method list and the per-rate tables.
        let rows = md
            .lines()
            .filter(|l| l.starts_with(&format!("| {} |", m.label)))
            .count();
        assert!(rows >= 5, "{}: {rows} table rows", m.label);
    }
    assert!(!md.contains("NaN"), "a NaN reached the report");
    for (name, (w, h)) in PLOTS {
        let path = format!("{dir}/results/{name}");
        assert!(written.contains(&path), "{path} not reported as written");
        assert!(
            md.contains(&format!("](results/{name})")),
            "{name} not linked"
        );
        let img = image::open(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .to_rgb8();
        assert_eq!(img.dimensions(), (*w, *h), "{name}");
        // Something is drawn (not a blank canvas), including dark text and axes.
        let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        let total = (w * h) as usize;
        assert!(dark > total / 1000, "{name}: {dark} dark pixels");
        assert!(
            white > total / 4 && white < total,
            "{name}: {white} white pixels"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
