//! Writes `results.md` and its PNGs from an [`Outcome`]: the claim verdicts with their paired
//! comparisons, the reference models, per-dataset tables at every rate and at the target rates,
//! the figures, the setup and the runtime.

use super::claims::{judge, FAIL_DROP, MIN_SEEDS, TARGET_GAIN};
use super::figure1;
use super::figures::{curves, figure3, figure4, figure_rates, shift_bins};
use super::methods::{describe, METHODS};
use super::metrics::CollapseRule;
use super::plots;
use super::runner::Dataset;
use super::stats::{LEVEL, RESAMPLES};
use super::summary::Metric;
use super::tables::{collapse_table, metric_table, references_table, REPORTED};
use super::tasks::{
    math_prompt, math_solution, reverse_answer, reverse_prompt, style_answer, style_chosen,
    style_prompt, style_rejected, RUDE_LETTERS, SFT_POLITE, STYLE_ITEMS,
};
use super::Outcome;
use std::fmt::Write;

/// Folder (inside the output folder) that holds the plots.
pub const PLOT_DIR: &str = "results";

fn setup(out: &mut String, o: &Outcome) {
    let p = &o.plan;
    let (a, b) = (347, 589);
    let words: Vec<String> = ["ab", "qed", "fig"].iter().map(|s| s.to_string()).collect();
    let _ = writeln!(
        out,
        "## Setup\n\n\
         **Data** (generated from seed {data_seed}, nothing stored):\n\n\
         - *math*: {digits}-digit additions written step by step, least significant digit first \
         (digits, incoming carry, two-digit sum), then the answer: `{prompt}` -> `{sol}`. \
         Preference pairs from each reference model's own mistakes (paper section 2.3): \
         {pool} training problems are solved by greedy decoding with the seed's reference, and \
         each wrong output becomes a pair (correct solution, that output). The {val} validation \
         and {test} test problems all become pairs: the reference's wrong output where it has \
         one, else the correct solution with one digit changed.\n\
         - *style* (a value with {items} decisions per answer): `{sprompt}` answered item by item, \
         politely or shouted; chosen `{schosen}`, rejected `{srejected}`. The SFT answers draw \
         each item's style: polite with chance {nice} for most words, {rude} for words starting \
         with one of `{rude_letters}` (e.g. `{smixed}`), so the reference is polite on most \
         answers but not all. {style_pairs} training pairs, {val} validation and {test} test \
         pairs.\n\
         - *reverse* (the held-out skill, in SFT only, never in any alignment data): `{rprompt}` \
         -> `{ranswer}`; {test} test words.\n\
         - *SFT*: {sft_math} math solutions, {sft_style} style answers and {sft_reverse} \
         reversals, shuffled.\n\n\
         **Model**: the trainer's transformer, C = {c}, L = {l}, {h} heads, byte vocabulary, block \
         {block}. **SFT** (the reference model, one per seed): {sft_steps} steps of {sft_batch} \
         sequences, peak learning rate {sft_lr:e}. **Alignment**: every method gets the same \
         budget, {steps} AdamW steps of {batch} units (a pair, or a lone response when pairs are \
         masked), cosine schedule with 10% warm-up, gradient clipping at 1, and the same \
         learning-rate grid {lrs:?}. Seeds {seeds:?} (each: its own SFT model, math pairs, data \
         order and pair masking). Every loss value and gradient comes from `bnf-core` through the \
         trainer. Left out to pay for the controls and the seeds (redundant in the previous run): \
         DPO b=0.01 (a near duplicate of b=0.1), R-DPO on math (its pairs are mostly of equal \
         length, where R-DPO is DPO), BNF at 25% pairing, and the rate 1e-3.\n",
        data_seed = p.data_seed,
        digits = super::tasks::DIGITS,
        prompt = math_prompt(a, b),
        sol = math_solution(a, b),
        pool = p.sizes.math_pool,
        val = p.sizes.val,
        test = p.sizes.test,
        items = STYLE_ITEMS,
        sprompt = style_prompt(&words),
        schosen = style_chosen(&words),
        srejected = style_rejected(&words),
        smixed = style_answer(&words, |i| i != 1),
        nice = SFT_POLITE.1,
        rude = SFT_POLITE.0,
        rude_letters = String::from_utf8_lossy(RUDE_LETTERS),
        style_pairs = p.sizes.style_pairs,
        rprompt = reverse_prompt("abcd"),
        ranswer = reverse_answer("abcd"),
        sft_math = p.sizes.sft_math,
        sft_style = p.sizes.sft_style,
        sft_reverse = p.sizes.sft_reverse,
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
        "| method | objective | hyperparameters | aligned on |\n|---|---|---|---|"
    );
    for m in METHODS {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            m.label,
            m.objective.name(),
            describe(m),
            if m.on_math { "math, style" } else { "style" }
        );
    }
    let _ = writeln!(
        out,
        "\n**Measurements** (held-out data never trained on):\n\n\
         - *preference accuracy*: fraction of test pairs with \
         `log pi/pi_ref(chosen) > log pi/pi_ref(rejected)` (DPO's implicit reward; the reference \
         itself scores 50%), a tie counting half; *raw*: `log pi(chosen) > log pi(rejected)`.\n\
         - *task accuracy*: math: fraction of test problems for which greedy decoding \
         reproduces the correct solution exactly, computed in one forward pass (greedy decoding \
         emits a response iff every scored position's first largest logit is that response's \
         next token; tested against real generation). Style: fraction of test prompts where \
         every item's style decision is polite: at the first letter of each item, given the \
         polite answer so far, the model scores the lowercase letter (polite) above the \
         uppercase one (shouted). Copying the words is not part of the value being aligned, so \
         it is not counted. *Gain* and *change*: after minus before, per seed against that seed's \
         reference.\n\
         - *alignment tax*: the change of a skill the alignment data never shows: the reverse \
         skill (after either alignment) and the math task (after aligning on style).\n\
         - *shifts*: `log pi(y) - log pi_ref(y)` summed over a response's tokens; on the chosen \
         test responses, and on each model's own greedy outputs for the first {own} test prompts \
         (scored by the model and by its reference). Gini: per response, of `|z_y - z_ref,y|` \
         over its tokens (paper Figure 3f).\n\
         - **collapse**: a run collapsed at the first probe ({probes} probes per run on {pp} \
         *validation* pairs, plus step 0) where the chosen responses became on average more than \
         `e^{drop}` times less likely than under the reference, where any measured value was not \
         finite, or where training stopped with an error.\n\
         - **target rate**: per method and dataset, the smallest rate of the grid at which the \
         mean validation task gain over seeds is at least {target:.0} points with no seed \
         collapsed. Only validation data reaches this choice; the test split is measured at the \
         end and chooses nothing.\n\
         - **paired comparisons**: every method of a seed starts from the same reference, so \
         methods are compared seed by seed; intervals are {level:.0}% percentile bootstrap \
         intervals of the mean per-seed difference ({resamples} resamples), and a comparison \
         needs at least {min_seeds} seeds measured on both sides. A baseline *failed* \
         on math (claim (b)) at a rate where a seed collapsed or its mean math change is below \
         -{fail:.0} points.\n",
        own = p.own_outputs,
        probes = p.probes,
        pp = p.probe_pairs,
        drop = CollapseRule::DEFAULT.max_drop,
        target = 100.0 * TARGET_GAIN,
        level = 100.0 * LEVEL,
        resamples = RESAMPLES,
        min_seeds = MIN_SEEDS,
        fail = 100.0 * FAIL_DROP,
    );
}

fn claims_section(out: &mut String, o: &Outcome) {
    let _ = writeln!(
        out,
        "## The paper's claims, one by one\n\n\
         Each verdict is computed from the numbers below by the rule quoted with it, fixed in \
         `trainer/cli/src/experiment/claims.rs` before the run: from BNF's wins `W` and losses \
         `L` in paired comparisons (an interval entirely on one side of 0), **held** if `W >= 1` \
         and `L = 0`, **partly held** if both are at least 1, **did not hold** if `W = 0`.\n\n\
         | claim | verdict |\n|---|---|"
    );
    let claims = judge(o);
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
            "**({}) {}** Verdict: **{}**.\n\n{}\n\n{}",
            c.id,
            c.statement,
            c.verdict.text(),
            c.evidence,
            c.tables
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

fn errors_section(out: &mut String, o: &Outcome) {
    let errors: Vec<String> = o
        .runs
        .iter()
        .filter_map(|(j, r)| {
            r.error.as_ref().map(|e| {
                format!(
                    "- {} {} lr {:e} seed {}: {e}",
                    j.dataset.name(),
                    METHODS[j.method].label,
                    j.lr,
                    o.plan.seeds[j.seed]
                )
            })
        })
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(
            out,
            "### Runs that stopped with an error\n\n{}\n",
            errors.join("\n")
        );
    }
}

/// Write `<dir>/results.md` and `<dir>/results/*.png`; returns the paths written.
pub fn write(o: &Outcome, dir: &str) -> Result<Vec<String>, String> {
    let plot_dir = format!("{dir}/{PLOT_DIR}");
    std::fs::create_dir_all(&plot_dir).map_err(|e| format!("{plot_dir}: {e}"))?;
    let mut written = Vec::new();
    let mut png = |name: &str| {
        let path = format!("{plot_dir}/{name}");
        written.push(path.clone());
        path
    };
    plots::figure1(&png("figure1.png"), &figure1::curves(99)?)?;
    for d in Dataset::ALL {
        let n = d.name();
        curves(&png(&format!("curves_{n}.png")), o, d)?;
        figure3(&png(&format!("shifts_{n}.png")), o, d)?;
        figure4(&png(&format!("bins_{n}.png")), o, d)?;
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
        "Generated by `bnf experiment` (trainer/cli/src/experiment/). The paper's claims (a)-(e) \
         tested on a byte-level transformer small enough for a CPU, on tasks where the reference \
         model is not saturated: math preference pairs built from each reference's own mistakes \
         (section 2.3), a style preference with several decisions per answer, and a held-out \
         skill for the alignment tax. Methods are compared with BNF seed by seed, at every \
         learning rate of the grid and at each method's target rate.\n"
    );
    claims_section(&mut out, o);
    let _ = writeln!(
        out,
        "## Results\n\n### The reference models\n\n{}",
        references_table(o)
    );
    for d in Dataset::ALL {
        let _ = writeln!(
            out,
            "### Aligned on the {} pairs\n\nTest split, mean ± sd over {} seeds; each column one \
             learning rate for every method, the last each method's own target rate.\n\n{}",
            d.name(),
            o.plan.seeds.len(),
            collapse_table(o, d)
        );
        for metric in REPORTED {
            if d == Dataset::Math && metric == Metric::MathChange {
                continue; // the task gain itself
            }
            out.push_str(&metric_table(o, d, metric));
        }
    }
    errors_section(&mut out, o);
    let _ = writeln!(
        out,
        "## Figures\n\n\
         Figure 1 (computed by `bnf-core` on constructed rows: `|dL/dz_y|` against `pi(y)`. NLL \
         and PLL have the same magnitude `1 - pi`, and BNF's magnitude is the same for a \
         preferred and a dispreferred token, so the curves coincide in pairs (drawn wide and \
         pale, and dashed with markers on top); PLL pushes `pi` down and so climbs its curve, BNF \
         peaks at `pi_ref`):\n\n\
         ![Figure 1]({PLOT_DIR}/figure1.png)\n"
    );
    for d in Dataset::ALL {
        let n = d.name();
        let _ = writeln!(
            out,
            "Training curves, {n} set (validation probes, mean over seeds):\n\n\
             ![curves {n}]({PLOT_DIR}/curves_{n}.png)\n\n\
             Shifts, {n} set (paper Figure 3: (a)-(d) and (f) as in the paper, on chosen test \
             responses; (e') the same shift on each model's own greedy outputs; values beyond the \
             axes are counted in the legend, not drawn in the edge bins; {rates}):\n\n\
             ![shifts {n}]({PLOT_DIR}/shifts_{n}.png)\n\n\
             Token-level shifts in DPO's percentile bins, {n} set (paper Figure 4):\n\n\
             ![bins {n}]({PLOT_DIR}/bins_{n}.png)\n",
            rates = figure_rates(o, d)
        );
        bins_table(&mut out, o, d);
    }
    setup(&mut out, o);
    runtime(&mut out, o);
    let md = format!("{dir}/results.md");
    bnf_trainer::paths::write_atomic(&md, out.as_bytes())?;
    written.insert(0, md);
    Ok(written)
}

fn bins_table(out: &mut String, o: &Outcome, d: Dataset) {
    let Some(bins) = shift_bins(o, d) else {
        let _ = writeln!(
            out,
            "(No DPO b=0.1 shifts to bin on the {} set.)\n",
            d.name()
        );
        return;
    };
    let _ =
        writeln!(
        out,
        "**{}** set, fraction of tokens (%) per DPO percentile bin (1 = most negative shift):\n\n\
         | method | {} |\n|---|{}",
        d.name(),
        (1..=10).map(|b| b.to_string()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(10)
    );
    for (m, f) in bins {
        let cells: Vec<String> = f.iter().map(|v| format!("{:.1}", 100.0 * v)).collect();
        let _ = writeln!(out, "| {} | {} |", METHODS[m].label, cells.join(" | "));
    }
    let _ = writeln!(out);
}
