//! Each objective's hyperparameters by name (the field names of its typed configuration), so
//! that a command line, a config file or a Python call can read and set them without naming
//! the configuration types. The match in `slots` is exhaustive: an objective added to core
//! does not compile until its parameters are named here.

use alloc::vec::Vec;

use super::Objective;

/// One hyperparameter of an objective's configuration.
enum Slot<'a> {
    /// A value the objective always has.
    Value(&'a mut f32),
    /// A value that may be unset (KTO's `z0`: unset means estimated from each batch).
    Optional(&'a mut Option<f32>),
}

/// The hyperparameters of `obj` by name, in a fixed order.
fn slots(obj: &mut Objective) -> Vec<(&'static str, Slot<'_>)> {
    use Slot::{Optional, Value};
    match obj {
        Objective::Bnf | Objective::Nll | Objective::NllPll => Vec::new(),
        Objective::Dpo(c) => alloc::vec![("beta", Value(&mut c.beta))],
        Objective::Ipo(c) => alloc::vec![("tau", Value(&mut c.tau))],
        Objective::SlicHf(c) => alloc::vec![
            ("margin", Value(&mut c.margin)),
            ("lambda", Value(&mut c.lambda)),
        ],
        Objective::SimPo(c) => {
            alloc::vec![("beta", Value(&mut c.beta)), ("gamma", Value(&mut c.gamma))]
        }
        Objective::RDpo(c) => {
            alloc::vec![("beta", Value(&mut c.beta)), ("alpha", Value(&mut c.alpha))]
        }
        Objective::Cpo(c) => alloc::vec![("beta", Value(&mut c.beta))],
        Objective::Orpo(c) => alloc::vec![("lambda", Value(&mut c.lambda))],
        Objective::Kto(c) => alloc::vec![
            ("beta", Value(&mut c.beta)),
            ("desirable_weight", Value(&mut c.desirable_weight)),
            ("undesirable_weight", Value(&mut c.undesirable_weight)),
            ("z0", Optional(&mut c.z0)),
        ],
    }
}

impl Objective {
    /// `(name, value)` of each hyperparameter, in a fixed order; `None` for an optional one
    /// that is unset (KTO's `z0`, estimated per batch). Empty for BNF, NLL and NLL+PLL.
    pub fn params(&self) -> Vec<(&'static str, Option<f32>)> {
        let mut copy = *self;
        slots(&mut copy)
            .into_iter()
            .map(|(name, slot)| match slot {
                Slot::Value(v) => (name, Some(*v)),
                Slot::Optional(v) => (name, *v),
            })
            .collect()
    }

    /// Set the hyperparameter called `name` (one of [`Objective::params`]' names) to `value`.
    /// Returns `false`, changing nothing, when the objective has no such hyperparameter. The
    /// value is not checked here: call [`Objective::validate`] once every value is set.
    pub fn set_param(&mut self, name: &str, value: f32) -> bool {
        match slots(self).into_iter().find(|(n, _)| *n == name) {
            Some((_, Slot::Value(v))) => *v = value,
            Some((_, Slot::Optional(v))) => *v = Some(value),
            None => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OBJECTIVE_NAMES;

    /// Each parameter lands in its own field: setting one to a fresh value changes exactly
    /// that entry of `params()`.
    #[test]
    fn every_parameter_is_set_by_its_name_alone() {
        for name in OBJECTIVE_NAMES {
            let obj = Objective::parse(name).unwrap();
            let before = obj.params();
            for (i, (p, _)) in before.iter().enumerate() {
                let mut o = obj;
                assert!(o.set_param(p, 123.5), "{name}.{p}");
                let after = o.params();
                for (j, (q, v)) in after.iter().enumerate() {
                    assert_eq!(q, &before[j].0);
                    let want = if i == j { Some(123.5) } else { before[j].1 };
                    assert_eq!(*v, want, "{name}: setting {p} changed {q}");
                }
            }
            let mut o = obj;
            assert!(!o.set_param("no_such_param", 1.0));
            assert_eq!(o, obj);
        }
    }
}
