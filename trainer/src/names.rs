//! How a message names a value or a step its caller gave or has to take. The library's checks
//! name each value by its field (`steps`, `batch`, `weight_decay`) and each step by the library
//! function that takes it (`RefLogps::compute`); a caller that took the values from somewhere
//! else says what it calls them, and the messages use its words: the command line passes
//! [`Names::flags`], so its users read `--steps` and `` `bnf precompute-ref` ``.

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

    /// Command-line flags (`--weight-decay`) and commands (`` `bnf precompute-ref` ``).
    pub fn flags() -> Names {
        Names {
            field: |field| format!("--{}", field.replace('_', "-")),
            step: |key| format!("`bnf {}`", key.replace('_', "-")),
        }
    }

    /// Names of the caller's choosing for fields (steps keep the library's names).
    pub fn new(name: fn(&str) -> String) -> Names {
        Names {
            field: name,
            ..Names::FIELDS
        }
    }

    /// What the caller calls `field`.
    pub fn of(&self, field: &str) -> String {
        (self.field)(field)
    }

    /// What the caller runs to take the step `key` (`"precompute_ref"`: compute the reference
    /// model's log-probs of a data file).
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
    fn fields_and_flags() {
        assert_eq!(Names::FIELDS.of("weight_decay"), "weight_decay");
        assert_eq!(Names::flags().of("weight_decay"), "--weight-decay");
        assert_eq!(Names::new(|f| f.to_uppercase()).of("lr"), "LR");
    }

    #[test]
    fn steps() {
        let key = "precompute_ref";
        assert_eq!(Names::FIELDS.step(key), "`RefLogps::compute`");
        assert_eq!(Names::flags().step(key), "`bnf precompute-ref`");
        assert_eq!(
            Names::new(|f| f.to_uppercase()).step(key),
            "`RefLogps::compute`"
        );
    }
}
