//! `bnf experiment`: the paper's findings at small scale (issues 7 and 18). Generates the data
//! ([`tasks`]), trains one SFT reference per seed, builds its math pairs from its own mistakes
//! ([`near_miss`]) and aligns it with every method of [`methods`] on those math pairs and on a
//! style preference set ([`runner`]), measures each run ([`measure`], [`metrics`]), compares
//! methods seed by seed ([`stats`], [`summary`]), judges the claims ([`claims`]) and writes
//! `results.md` with its plots ([`report`], [`tables`], [`figures`], [`plots`], [`figure1`]).
//! [`findings_check`] holds the hand-written reading to the generated numbers.

pub mod claims;
pub mod figure1;
pub mod figures;
pub mod findings_check;
pub mod measure;
pub mod methods;
pub mod metrics;
pub mod near_miss;
pub mod plan;
pub mod plots;
pub mod report;
pub mod runner;
pub mod stats;
pub mod summary;
pub mod tables;
pub mod tasks;

use clap::Args;
use methods::METHODS;
use plan::Plan;
use runner::{align, parallel_map, reference, Dataset, Job, RunResult};
use std::time::Instant;
use tasks::Tasks;

/// Arguments of `experiment`.
#[derive(Args, Debug, Clone)]
pub struct ExperimentArgs {
    /// The CI smoke run: every method and output on a tiny budget (minutes; numbers
    /// meaningless).
    #[arg(long)]
    pub quick: bool,
    /// Folder for `results.md` and its plots (`<out-dir>/results/*.png`); default `docs` for
    /// the full run, `experiment-quick` with `--quick`.
    #[arg(long)]
    pub out_dir: Option<String>,
    /// Runs in parallel, each on one thread (the numbers do not depend on it).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Override the preset's SFT steps.
    #[arg(long)]
    pub sft_steps: Option<usize>,
    /// Override the preset's alignment steps.
    #[arg(long)]
    pub align_steps: Option<usize>,
    /// Override the preset's number of seeds (seeds 0..N).
    #[arg(long)]
    pub seeds: Option<usize>,
}

/// The most seeds `--seeds` takes.
pub const MAX_SEEDS: usize = 1000;

impl ExperimentArgs {
    /// The preset with the command line's overrides.
    pub fn plan(&self) -> Result<Plan, String> {
        let mut plan = if self.quick {
            Plan::quick()
        } else {
            Plan::full()
        };
        if let Some(n) = self.sft_steps {
            plan.sft_steps = n;
        }
        if let Some(n) = self.align_steps {
            plan.align_steps = n;
        }
        if let Some(n) = self.seeds {
            if n > MAX_SEEDS {
                return Err(format!(
                    "experiment: --seeds {n} is more than {MAX_SEEDS} (each seed trains its own \
                     reference model and every alignment run again)"
                ));
            }
            plan.seeds = (0..n as u64).collect();
        }
        if plan.sft_steps == 0 || plan.align_steps == 0 || plan.seeds.is_empty() || self.jobs == 0 {
            return Err(
                "experiment: --sft-steps, --align-steps, --seeds and --jobs must be positive"
                    .into(),
            );
        }
        Ok(plan)
    }
}

/// Everything the report is written from.
pub struct Outcome {
    /// The plan that ran.
    pub plan: Plan,
    /// One reference per seed.
    pub references: Vec<runner::Reference>,
    /// Every alignment job with its result.
    pub runs: Vec<(Job, RunResult)>,
    /// Wall seconds of the whole experiment.
    pub seconds: f64,
    /// Worker threads used.
    pub jobs: usize,
}

/// Every alignment job of `plan`, in a fixed order.
pub fn jobs(plan: &Plan) -> Vec<Job> {
    let mut out = Vec::new();
    for dataset in Dataset::ALL {
        for (method, m) in METHODS.iter().enumerate() {
            if dataset == Dataset::Math && !m.on_math {
                continue;
            }
            for &lr in &plan.lrs {
                for seed in 0..plan.seeds.len() {
                    out.push(Job {
                        dataset,
                        method,
                        lr,
                        seed,
                    });
                }
            }
        }
    }
    out
}

/// Run `plan` on `workers` threads.
pub fn execute(plan: Plan, workers: usize) -> Result<Outcome, String> {
    let start = Instant::now();
    let tasks = Tasks::generate(plan.sizes, plan.data_seed)?;
    let longest = tasks
        .all()
        .map(|r| r.prompt.len() + r.completion.len() + 2)
        .max()
        .unwrap_or(0);
    if longest > plan.model.block_size {
        return Err(format!(
            "experiment: sequences of {longest} tokens, block size {}",
            plan.model.block_size
        ));
    }
    eprintln!(
        "experiment ({}): SFT of {} reference model(s), {} steps each",
        plan.name,
        plan.seeds.len(),
        plan.sft_steps
    );
    let references: Vec<runner::Reference> = parallel_map(&plan.seeds, workers, |_, &seed| {
        reference(&plan, &tasks, seed)
    })
    .into_iter()
    .collect::<Result<_, _>>()?;
    for r in &references {
        eprintln!(
            "  seed {}: SFT {} steps, loss {:.4} -> {:.4}, task accuracy math {:.1}%, style {:.1}%, \
             reverse {:.1}%; raw pref. accuracy math {:.1}%, style {:.1}%; {} math training \
             pairs from {} problems ({:.1} tokens differ) ({:.1} s)",
            r.seed,
            r.sft_loss.len(),
            r.sft_loss.first().copied().unwrap_or(f32::NAN),
            r.sft_loss.last().copied().unwrap_or(f32::NAN),
            100.0 * r.before[0].task_accuracy,
            100.0 * r.before[1].task_accuracy,
            100.0 * r.reverse_before,
            100.0 * r.before[0].raw_pref_accuracy,
            100.0 * r.before[1].raw_pref_accuracy,
            r.math[0].own_errors,
            r.math[0].problems,
            r.math[0].mean_diff,
            r.seconds
        );
    }
    let all = jobs(&plan);
    let done = std::sync::atomic::AtomicUsize::new(0);
    eprintln!(
        "experiment ({}): {} alignment runs of {} steps",
        plan.name,
        all.len(),
        plan.align_steps
    );
    let results = parallel_map(&all, workers, |_, job| {
        let method = &METHODS[job.method];
        let r = align(&plan, &tasks, method, &references[job.seed], job);
        let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let pref = r.test.as_ref().map_or(f64::NAN, |c| c.pref_accuracy);
        eprintln!(
            "  [{k}/{}] {} {} lr {:e} seed {}: pref {:.1}%{}{} ({:.1} s)",
            all.len(),
            job.dataset.name(),
            method.label,
            job.lr,
            plan.seeds[job.seed],
            100.0 * pref,
            r.collapse_step
                .map_or(String::new(), |s| format!(", collapsed at step {s}")),
            r.error
                .as_ref()
                .map_or(String::new(), |e| format!(", error: {e}")),
            r.seconds
        );
        r
    });
    Ok(Outcome {
        plan,
        references,
        runs: all.into_iter().zip(results).collect(),
        seconds: start.elapsed().as_secs_f64(),
        jobs: workers,
    })
}

/// `bnf experiment`.
pub fn run(args: &ExperimentArgs) -> Result<(), String> {
    let plan = args.plan()?;
    let out_dir = args.out_dir.clone().unwrap_or_else(|| {
        if args.quick {
            "experiment-quick"
        } else {
            "docs"
        }
        .to_string()
    });
    let workers = args.jobs.max(1);
    // Each run is single-threaded (parallelism comes from running runs side by side), so the
    // numbers are the same whatever `--jobs` is.
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
    bnf_core::set_num_threads(1);
    bnf_trainer::model::par::set_threads(1);
    let outcome = execute(plan, workers)?;
    let written = report::write(&outcome, &out_dir)?;
    for path in written {
        println!("wrote {path}");
    }
    println!("experiment done in {:.1} s", outcome.seconds);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(jobs: usize, seeds: Option<usize>) -> ExperimentArgs {
        ExperimentArgs {
            quick: true,
            out_dir: None,
            jobs,
            sft_steps: None,
            align_steps: None,
            seeds,
        }
    }

    /// Absurd counts are errors before anything is allocated or started.
    #[test]
    fn unusable_counts_are_refused() {
        assert!(args(2, Some(3)).plan().is_ok());
        assert!(args(2, Some(MAX_SEEDS)).plan().is_ok());
        for seeds in [MAX_SEEDS + 1, usize::MAX] {
            let e = args(2, Some(seeds)).plan().unwrap_err();
            assert!(e.contains(&format!("--seeds {seeds} is more than")), "{e}");
        }
        let e = args(0, None).plan().unwrap_err();
        assert!(e.contains("--jobs must be positive"), "{e}");
        let e = args(2, Some(0)).plan().unwrap_err();
        assert!(e.contains("--seeds"), "{e}");
    }

    /// A worker count far above the items' starts one worker per item at most.
    #[test]
    fn huge_worker_counts_run_every_item() {
        let items = [1u32, 2, 3];
        let out = runner::parallel_map(&items, usize::MAX, |i, &x| (i, x * 2));
        assert_eq!(out, vec![(0, 2), (1, 4), (2, 6)]);
    }
}
