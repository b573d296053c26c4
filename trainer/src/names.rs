//! How a message names a value its caller gave. The library's checks name each value by its
//! field (`steps`, `batch`, `weight_decay`); a caller that took the values from somewhere else
//! says what it calls them, and the messages use its words: the command line passes
//! [`Names::flags`], so its users read `--steps`.

/// Turns a field's name into the caller's name for it.
#[derive(Clone, Copy, Debug)]
pub struct Names(fn(&str) -> String);

impl Names {
    /// The fields' own names (`weight_decay`).
    pub const FIELDS: Names = Names(str::to_string);

    /// Command-line flags (`--weight-decay`).
    pub fn flags() -> Names {
        Names(|field| format!("--{}", field.replace('_', "-")))
    }

    /// Names of the caller's choosing.
    pub fn new(name: fn(&str) -> String) -> Names {
        Names(name)
    }

    /// What the caller calls `field`.
    pub fn of(&self, field: &str) -> String {
        (self.0)(field)
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
}
