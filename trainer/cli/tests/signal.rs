//! The `bnf` binary under a log and Ctrl-C: with stderr not a terminal it prints plain
//! progress lines and writes the loss curve (`<out>.metrics.jsonl`) as it goes; SIGINT stops
//! it after the running step with a saved checkpoint, a resume command and exit status 130;
//! resumed, the run ends with the checkpoint of an uninterrupted run, byte for byte, and a
//! curve with each step once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STEPS: usize = 300;

fn sft(dir: &std::path::Path, out: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bnf"));
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/tiny.jsonl");
    c.current_dir(dir)
        .args(["sft", "--data", data, "--out", out, "--batch", "2"])
        .args(["--steps", &STEPS.to_string(), "--save-every", "0"])
        .args([
            "--channels",
            "8",
            "--layers",
            "1",
            "--heads",
            "2",
            "--block-size",
            "32",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn steps_in(metrics: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(metrics)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["step"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn sigint_saves_and_the_run_resumes_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("bnf-signal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Uninterrupted, stderr piped: plain progress lines and a full curve.
    let whole = sft(&dir, "whole.safetensors", &[]).output().unwrap();
    let log = String::from_utf8_lossy(&whole.stderr);
    assert!(whole.status.success(), "{log}");
    assert!(
        log.contains("nll: step 15/300 loss") && log.contains("step 300/300"),
        "{log}"
    );
    let want: Vec<u64> = (1..=STEPS as u64).collect();
    assert_eq!(steps_in(&dir.join("whole.safetensors.metrics.jsonl")), want);

    // Interrupted once a few steps are in the curve.
    let child = sft(&dir, "run.safetensors", &[]).spawn().unwrap();
    let metrics = dir.join("run.safetensors.metrics.jsonl");
    let start = Instant::now();
    while steps_in(&metrics).len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted at step") && err.contains("resume with: bnf sft --resume"),
        "{err}"
    );
    let saved = bnf_trainer::checkpoint::load(dir.join("run.safetensors").to_str().unwrap())
        .unwrap()
        .train
        .unwrap()
        .step;
    assert!((3..STEPS).contains(&saved), "stopped at {saved}");
    assert_eq!(steps_in(&metrics), (1..=saved as u64).collect::<Vec<_>>());

    // Resumed: the uninterrupted run's checkpoint, and each step once in the curve.
    let resumed = sft(&dir, "run.safetensors", &["--resume", "run.safetensors"])
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        std::fs::read(dir.join("run.safetensors")).unwrap(),
        std::fs::read(dir.join("whole.safetensors")).unwrap()
    );
    assert_eq!(steps_in(&metrics), want);
    std::fs::remove_dir_all(&dir).unwrap();
}
