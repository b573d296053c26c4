//! What an objective needs of the data, checked before the first step: a pairwise objective
//! needs every response with its partner (so every micro-batch holds whole pairs), and an
//! objective that reads the reference needs reference log-probs that match the data.

use crate::data::Response;
use crate::names::Names;
use crate::reference::RefLogps;
use bnf_core::{Objective, OBJECTIVE_NAMES};
use std::collections::HashSet;

/// The objectives that train on responses without partners.
fn unpaired_objectives() -> String {
    OBJECTIVE_NAMES
        .iter()
        .filter(|n| Objective::parse(n).is_some_and(|o| !o.needs_pairs()))
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// A pairwise objective needs every pair whole: a pairing ratio below 1 is refused (before any
/// side is dropped). The message names the value as the caller does (`names`).
pub fn check_pairing_ratio(
    objective: &Objective,
    pairing_ratio: f64,
    names: Names,
) -> Result<(), String> {
    if objective.needs_pairs() && (pairing_ratio < 1.0 || pairing_ratio.is_nan()) {
        return Err(format!(
            "objective {} is pairwise and needs every pair whole, but the pairing ratio \
             {pairing_ratio} ({}) drops one side of some pairs; use a pairing ratio of 1, or \
             an objective that takes unpaired responses ({})",
            objective.name(),
            names.of("pairing_ratio"),
            unpaired_objectives()
        ));
    }
    Ok(())
}

/// Check that `objective` can train on `responses` (after the pairing ratio was applied) with
/// `refs`, before any step runs. The messages name values and steps as the caller does
/// (`names`).
pub fn check_data(
    objective: &Objective,
    pairing_ratio: f64,
    responses: &[Response],
    refs: Option<&RefLogps>,
    names: Names,
) -> Result<(), String> {
    let name = objective.name();
    check_pairing_ratio(objective, pairing_ratio, names)?;
    if objective.needs_pairs() {
        let ids: HashSet<usize> = responses.iter().map(|r| r.id).collect();
        let lone = responses
            .iter()
            .find(|r| !r.partner.is_some_and(|p| ids.contains(&p)));
        if let Some(r) = lone {
            return Err(format!(
                "objective {name} is pairwise, but the response from line {} has no partner \
                 (an unpaired {{\"prompt\",\"completion\",\"label\"}} example); give paired data \
                 only, or use an objective that takes unpaired responses ({})",
                r.line,
                unpaired_objectives()
            ));
        }
    }
    if objective.needs_reference() {
        let refs = refs.ok_or_else(|| {
            format!(
                "objective {name} needs the reference model's log-probs: run {} first",
                names.step("precompute_ref")
            )
        })?;
        refs.check(responses, names)?;
    }
    Ok(())
}
