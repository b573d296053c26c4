//! Writes `results.md` and its PNGs from an [`Outcome`]: setup, the claim verdicts, per-dataset
//! tables (mean ± standard deviation over seeds), BNF's pairing ratios, the learning-rate grid,
//! the figures and the runtime.

use super::claims::judge;
use super::figure1;
use super::figures::{curves, figure3, figure4, shift_bins, PAPER_SET};
use super::methods::{describe, METHODS};
use super::metrics::CollapseRule;
use super::plots;
use super::runner::Dataset;
use super::summary::{math_delta_at, num, pct, points, summarize, DatasetSummary};
use super::tasks::{math_prompt, math_solution, style_chosen, style_prompt, style_rejected};
use super::Outcome;
use std::fmt::Write;

/// Folder (inside the output folder) that holds the plots.
pub const PLOT_DIR: &str = "results";

fn setup(out: &mut String, o: &Outcome) {
    let p = &o.plan;
    let (a, b) = (347, 589);
    let wrong = "7+9+0=16,4+8+1=13,3+5+1=09,0946";
    let _ = writeln!(
        out,
        "## Setup\n\n\
         **Data** (generated from seed {data_seed}, nothing stored):\n\n\
         - *math*: {digits}-digit additions written step by step, least significant digit first \
         (digits, incoming carry, two-digit sum), then the answer: `{prompt}` -> `{sol}`. \
         Near-duplicate preference pairs (paper section 2.3): chosen = the correct solution, \
         rejected = the same text with exactly one digit changed, e.g. `{wrong}`. \
         {math_pairs} training pairs, {val} validation and {test} test pairs.\n\
         - *style*: `{sprompt}` answered politely (`{schosen}`, chosen) or shouted \
         (`{srejected}`, rejected): pairs that differ in almost every token. {style_pairs} \
         training pairs, {val} validation and {test} test pairs.\n\
         - *SFT*: {sft_math} correct math solutions and {sft_style} words with *both* answer \
         styles, so the reference model starts with no style preference.\n\n\
         **Model**: the trainer's transformer, C = {c}, L = {l}, {h} heads, byte vocabulary, block \
         {block}. **SFT** (the reference model, one per seed): {sft_steps} steps of {sft_batch} \
         sequences, peak learning rate {sft_lr:e}. **Alignment**: every method gets the same \
         budget, {steps} AdamW steps of {batch} units (a pair, or a lone response when pairs are \
         masked), cosine schedule with 10% warm-up, gradient clipping at 1, and the same \
         learning-rate grid {lrs:?}. Seeds {seeds:?} (each: its own SFT model, data order and \
         pair masking). Reference log-probs come from that seed's SFT model. Every loss value and \
         gradient comes from `bnf-core` through the trainer.\n",
        data_seed = p.data_seed,
        digits = super::tasks::DIGITS,
        prompt = math_prompt(a, b),
        sol = math_solution(a, b),
        math_pairs = p.sizes.math_pairs,
        style_pairs = p.sizes.style_pairs,
        val = p.sizes.val,
        test = p.sizes.test,
        sprompt = style_prompt("abc"),
        schosen = style_chosen("abc"),
        srejected = style_rejected("abc"),
        sft_math = p.sizes.sft_math,
        sft_style = p.sizes.sft_style,
        c = p.model.channels,
        l = p.model.layers,
        h = p.model.heads,
        block = p.model.block_size,
        sft_steps = p.sft_steps,
        sft_batch = p.sft_batch,
        sft_lr = p.sft_lr,
        steps = p.align_steps,
        batch = p.align_batch,
        lrs = p.lrs,
        seeds = p.seeds,
    );
    let _ = writeln!(
        out,
        "| method | objective | hyperparameters |\n|---|---|---|"
    );
    for m in METHODS {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} |",
            m.label,
            m.objective.name(),
            describe(m)
        );
    }
    let _ = writeln!(
        out,
        "\n**Measurements** (on held-out pairs never trained on):\n\n\
         - *preference accuracy*: fraction of test pairs with \
         `log pi/pi_ref(chosen) > log pi/pi_ref(rejected)` (DPO's implicit reward), a tie \
         counting half; *raw*: `log pi(chosen) > log pi(rejected)`, likewise.\n\
         - *task accuracy*: fraction of test prompts for which greedy decoding reproduces the \
         chosen response (math: the whole correct solution; style: its polite opening \
         `sure: `, i.e. the preferred style was taken, whether or not the word is then copied \
         right). \
         It is computed in one forward pass: greedy decoding emits a response iff every scored \
         position's first largest logit is that response's next token (tested against real \
         generation).\n\
         - *alignment tax*: the change of math task accuracy, after minus before, per seed \
         against that seed's reference.\n\
         - *shifts*: `log pi(y) - log pi_ref(y)` summed over the response's tokens, mean over \
         test responses.\n\
         - **collapse**: a run collapsed at the first probe ({probes} probes per run on {pp} test \
         pairs, plus step 0) where the chosen responses became on average more than `e^{drop}` \
         times less likely than under the reference (mean `log pi(y) - log pi_ref(y)` below \
         -{drop} nat), where any measured value was not finite, or where training stopped with an \
         error. This is the paper's failure mode: the preferred answers' likelihood falling with \
         the rejected ones'.\n\
         - *learning rate*: per method and dataset, the rate of the grid with the highest mean \
         validation score over seeds, the score being the mean of preference accuracy and task \
         accuracy on the validation pairs (a collapsed run scores 0; ties go to the smaller \
         rate). Tables report the test split at that rate, mean ± sample standard \
         deviation over seeds.\n",
        probes = p.probes,
        pp = p.probe_pairs,
        drop = CollapseRule::DEFAULT.max_drop,
    );
}

fn claims_section(out: &mut String, o: &Outcome, sums: &[DatasetSummary; 2]) {
    let _ = writeln!(
        out,
        "## The paper's claims, one by one\n\n\
         Each verdict is computed from the numbers below by the rule quoted with it. The \
         \"likely reason\" is an interpretation of those numbers, not a measurement.\n\n\
         | claim | verdict |\n|---|---|"
    );
    let claims = judge(o, sums);
    for c in &claims {
        let _ = writeln!(
            out,
            "| ({}) {} | **{}** |",
            c.id,
            c.statement,
            c.verdict.text()
        );
    }
    let _ = writeln!(out);
    for c in &claims {
        let _ = writeln!(
            out,
            "**({}) {}** Verdict: **{}**.\n\n{}\n\n*Likely reason:* {}\n",
            c.id,
            c.statement,
            c.verdict.text(),
            c.evidence,
            c.why
        );
    }
}

fn dataset_table(out: &mut String, s: &DatasetSummary, seeds: usize) {
    let math = s.dataset == Dataset::Math;
    let _ = writeln!(
        out,
        "### Aligned on the {} pairs\n\n\
         Reference (before alignment): task accuracy {}%{}. Test split, {} seed(s) per cell.\n",
        s.dataset.name(),
        pct(s.task_before),
        if math {
            String::new()
        } else {
            format!(", math task accuracy {}%", pct(s.math_before))
        },
        seeds
    );
    let task = if math { "math" } else { "style" };
    let math_col = if math {
        ""
    } else {
        " math task acc. after (%) |"
    };
    let _ = writeln!(
        out,
        "| method | lr | pref. acc. (%) | raw pref. acc. (%) | {task} task acc. after (%) |{math_col} \
         math task change (points) | chosen shift (nats) | rejected shift (nats) | \
         collapsed (at lr) | collapsed (grid) |\n|---|---|---|---|---|{}---|---|---|---|---|",
        if math { "" } else { "---|" }
    );
    for r in &s.rows {
        let math_cell = if math {
            String::new()
        } else {
            format!(" {} |", pct(r.math_after))
        };
        let _ = writeln!(
            out,
            "| {} | {:e} | {} | {} | {} |{math_cell} {} | {} | {} | {}/{} | {}/{} |",
            METHODS[r.method].label,
            r.lr,
            pct(r.pref),
            pct(r.raw_pref),
            pct(r.task_after),
            points(r.math_delta),
            num(r.chosen_shift),
            num(r.rejected_shift),
            r.collapsed.0,
            r.collapsed.1,
            r.collapsed_grid.0,
            r.collapsed_grid.1
        );
    }
    let _ = writeln!(out);
}

fn pairing_table(out: &mut String, sums: &[DatasetSummary; 2]) {
    let _ = writeln!(
        out,
        "### BNF at different pairing ratios (paper Table 6)\n\n\
         A ratio of 50% keeps half of the pairs whole and reduces the others to one random side; \
         0% leaves no pair at all.\n\n\
         | dataset | pairing | pref. acc. (%) | task acc. after (%) | math tax (points) | collapsed |\n\
         |---|---|---|---|---|---|"
    );
    for s in sums {
        for r in s
            .rows
            .iter()
            .filter(|r| METHODS[r.method].objective == bnf_core::Objective::Bnf)
        {
            let _ = writeln!(
                out,
                "| {} | {:.0}% | {} | {} | {} | {}/{} |",
                s.dataset.name(),
                100.0 * METHODS[r.method].pairing_ratio,
                pct(r.pref),
                pct(r.task_after),
                points(r.math_delta),
                r.collapsed.0,
                r.collapsed.1
            );
        }
    }
    let _ = writeln!(out);
}

fn grid_table(out: &mut String, s: &DatasetSummary, lrs: &[f32]) {
    let head: Vec<String> = lrs.iter().map(|lr| format!("lr {lr:e}")).collect();
    let _ = writeln!(
        out,
        "**{}**: mean validation score (%, mean of preference and task accuracy) per learning rate (collapsed runs count 0)\n\n\
         | method | {} | chosen |\n|---|{}---|",
        s.dataset.name(),
        head.join(" | "),
        "---|".repeat(lrs.len())
    );
    for r in &s.rows {
        let cells: Vec<String> = r
            .val_by_lr
            .iter()
            .map(|(_, v)| format!("{:.1}", 100.0 * v))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {:e} |",
            METHODS[r.method].label,
            cells.join(" | "),
            r.lr
        );
    }
    let _ = writeln!(out);
}

/// The alignment tax at every rate of the grid, so methods can be compared at one rate as well
/// as at their chosen ones (on the style set the validation scores of most rates tie within a
/// fraction of a point, so which rate is chosen decides much of the tax).
fn tax_table(out: &mut String, o: &Outcome, s: &DatasetSummary, lrs: &[f32]) {
    let head: Vec<String> = lrs.iter().map(|lr| format!("lr {lr:e}")).collect();
    let _ = writeln!(
        out,
        "**{}**: math task change (points, mean ± sd over seeds, each seed against its own reference) per learning rate; collapsed runs included\n\n\
         | method | {} | chosen |\n|---|{}---|",
        s.dataset.name(),
        head.join(" | "),
        "---|".repeat(lrs.len())
    );
    for r in &s.rows {
        let cells: Vec<String> = lrs
            .iter()
            .map(|&lr| points(math_delta_at(o, s.dataset, r.method, lr)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {:e} |",
            METHODS[r.method].label,
            cells.join(" | "),
            r.lr
        );
    }
    let _ = writeln!(out);
}

fn bins_table(out: &mut String, o: &Outcome, s: &DatasetSummary) {
    let Some(bins) = shift_bins(o, s) else {
        let _ = writeln!(
            out,
            "(No DPO b=0.1 shifts to bin on the {} set.)\n",
            s.dataset.name()
        );
        return;
    };
    let _ =
        writeln!(
        out,
        "**{}** set, fraction of tokens (%) per DPO percentile bin (1 = most negative shift):\n\n\
         | method | {} |\n|---|{}",
        s.dataset.name(),
        (1..=10).map(|b| b.to_string()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(10)
    );
    for (m, f) in bins {
        let cells: Vec<String> = f.iter().map(|v| format!("{:.1}", 100.0 * v)).collect();
        let _ = writeln!(out, "| {} | {} |", METHODS[m].label, cells.join(" | "));
    }
    let _ = writeln!(out);
}

fn errors_section(out: &mut String, sums: &[DatasetSummary; 2]) {
    let errors: Vec<String> = sums
        .iter()
        .flat_map(|s| {
            s.rows.iter().flat_map(move |r| {
                r.errors.iter().map(move |(seed, e)| {
                    format!(
                        "- {} {} seed {seed}: {e}",
                        s.dataset.name(),
                        METHODS[r.method].label
                    )
                })
            })
        })
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(
            out,
            "### Runs that stopped with an error (at the chosen rates)\n\n{}\n",
            errors.join("\n")
        );
    }
}

/// The CPU model and logical CPU count, as far as the system tells.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} logical CPU(s), {model}")
}

fn runtime(out: &mut String, o: &Outcome) {
    let sft: f64 = o.references.iter().map(|r| r.seconds).sum();
    let align: f64 = o.runs.iter().map(|(_, r)| r.seconds).sum();
    let _ = writeln!(
        out,
        "## Runtime\n\n\
         `bnf experiment{}` took {:.0} s of wall time on {} with {} parallel run(s) ({} alignment \
         runs; SFT and reference passes {:.0} s and alignment runs {:.0} s, summed over runs). \
         Other work on the machine is not recorded; say how loaded it was when committing this \
         file.\n",
        if o.plan.name == "quick" {
            " --quick"
        } else {
            ""
        },
        o.seconds,
        machine(),
        o.jobs,
        o.runs.len(),
        sft,
        align
    );
}

/// Write `<dir>/results.md` and `<dir>/results/*.png`; returns the paths written.
pub fn write(o: &Outcome, dir: &str) -> Result<Vec<String>, String> {
    let plot_dir = format!("{dir}/{PLOT_DIR}");
    std::fs::create_dir_all(&plot_dir).map_err(|e| format!("{plot_dir}: {e}"))?;
    let sums = [summarize(o, Dataset::Math), summarize(o, Dataset::Style)];
    let mut written = Vec::new();
    let mut png = |name: &str| {
        let path = format!("{plot_dir}/{name}");
        written.push(path.clone());
        path
    };
    plots::figure1(&png("figure1.png"), &figure1::curves(99)?)?;
    for s in &sums {
        let n = s.dataset.name();
        curves(&png(&format!("curves_{n}.png")), o, s)?;
        figure3(&png(&format!("shifts_{n}.png")), o, s)?;
        figure4(&png(&format!("bins_{n}.png")), o, s)?;
    }
    let mut out = String::new();
    let _ = writeln!(out, "# BNF and the baselines at small scale: results\n");
    if o.plan.name == "quick" {
        let _ = writeln!(
            out,
            "> **Quick smoke run (`--quick`)**: a tiny model and a few steps, to check that the \
             report and plots are produced. Its numbers mean nothing; do not read them as results.\n"
        );
    }
    let _ = writeln!(
        out,
        "Generated by `bnf experiment` (trainer/src/experiment/). The paper's claims (a)-(e) \
         tested on a byte-level transformer small enough for a CPU, on tasks built to match the \
         paper's regimes: near-duplicate math preference pairs (section 2.3) and a style \
         preference whose pairs differ a lot, with held-out math accuracy as the reasoning task.\n"
    );
    claims_section(&mut out, o, &sums);
    let _ = writeln!(out, "## Results\n");
    for s in &sums {
        dataset_table(&mut out, s, o.plan.seeds.len());
    }
    pairing_table(&mut out, &sums);
    errors_section(&mut out, &sums);
    let _ = writeln!(
        out,
        "## Figures\n\n\
         Figure 1 (computed by `bnf-core` on constructed rows: `|dL/dz_y|` against `pi(y)`; \
         NLL and PLL have the same magnitude `1 - pi`, PLL pushes `pi` down and so climbs the \
         curve; BNF peaks at `pi_ref`):\n\n\
         ![Figure 1]({PLOT_DIR}/figure1.png)\n"
    );
    for s in &sums {
        let n = s.dataset.name();
        let _ = writeln!(
            out,
            "Training curves, {n} set (mean over seeds at each method's chosen rate):\n\n\
             ![curves {n}]({PLOT_DIR}/curves_{n}.png)\n\n\
             Shift distributions, {n} set (paper Figure 3; (a)-(c) for {set}, (d) every method):\n\n\
             ![shifts {n}]({PLOT_DIR}/shifts_{n}.png)\n\n\
             Token-level shifts in DPO's percentile bins, {n} set (paper Figure 4):\n\n\
             ![bins {n}]({PLOT_DIR}/bins_{n}.png)\n",
            set = PAPER_SET.join(", ")
        );
        bins_table(&mut out, o, s);
    }
    setup(&mut out, o);
    let _ = writeln!(out, "## Learning-rate grid\n");
    for s in &sums {
        grid_table(&mut out, s, &o.plan.lrs);
    }
    for s in &sums {
        tax_table(&mut out, o, s, &o.plan.lrs);
    }
    runtime(&mut out, o);
    let md = format!("{dir}/results.md");
    bnf_trainer::paths::write_atomic(&md, out.as_bytes())?;
    written.insert(0, md);
    Ok(written)
}
