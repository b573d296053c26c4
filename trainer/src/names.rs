//! How a message names a value or a step its caller gave or has to take. The library's checks
//! name each value by its field (`steps`, `batch`, `weight_decay`) and each step by the library
//! function that takes it (`RefLogps::compute`); a caller that took the values from somewhere
//! else says what it calls them, and the messages use its words: the command line (bnf-cli)
//! passes its flags and commands, so its users read `--steps` and `` `bnf precompute-ref` ``.

/// The steps a message may ask for, by key, with the library function that takes each.
const STEPS: &[(&str, &str)] = &[("precompute_ref", "RefLogps::compute")];

/// The library's name of the step `key` (the key itself for a step it does not know).
fn library_step(key: &str) -> String {
    let name = STEPS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, f)| f);
    format!("`{name}`")
}

/// Turns a field's (or a step's) name into the caller's name for it.
#[derive(Clone, Copy, Debug)]
pub struct Names {
    field: fn(&str) -> String,
    step: fn(&str) -> String,
}

impl Names {
    /// The fields' own names (`weight_decay`), the library's functions for steps
    /// (`` `RefLogps::compute` ``).
    pub const FIELDS: Names = Names {
        field: str::to_string,
        step: library_step,
    };

    /// The caller's names: `field` of a field's name (`weight_decay`), `step` of a step's key
    /// (`precompute_ref`: compute the reference model's log-probs of a data file).
    pub const fn new(field: fn(&str) -> String, step: fn(&str) -> String) -> Names {
        Names { field, step }
    }

    /// What the caller calls `field`.
    pub fn of(&self, field: &str) -> String {
        (self.field)(field)
    }

    /// What the caller runs to take the step `key`.
    pub fn step(&self, key: &str) -> String {
        (self.step)(key)
    }
}

impl Default for Names {
    fn default() -> Self {
        Names::FIELDS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_steps() {
        assert_eq!(Names::FIELDS.of("weight_decay"), "weight_decay");
        assert_eq!(Names::FIELDS.step("precompute_ref"), "`RefLogps::compute`");
        let caller = Names::new(|f| f.to_uppercase(), |s| format!("do {s}"));
        assert_eq!(caller.of("lr"), "LR");
        assert_eq!(caller.step("precompute_ref"), "do precompute_ref");
    }
}
