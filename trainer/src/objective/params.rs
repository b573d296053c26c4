//! The objective's hyperparameters by name (`beta`, `tau`, ...): set by a program or a command
//! line, listed ([`describe_all`]), and recorded in a run's config so a resumed run uses the
//! values the run started with. The objective itself is `bnf_core::Objective`; this file only
//! names the fields of its typed configurations. Messages name a hyperparameter as the caller
//! does ([`Names`]: the field's name, or the command line's flag).

use crate::names::Names;
use bnf_core::{BnfError, IpoConfig, Objective, OBJECTIVE_NAMES};

/// `obj` as a name with its hyperparameters, e.g. `dpo(beta=0.1)`; unset optional ones are
/// left out.
pub fn display(obj: &Objective) -> String {
    let ps: Vec<String> = obj
        .params()
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n}={v}")))
        .collect();
    format!("{}({})", obj.name(), ps.join(", "))
}

/// The values core accepts for the hyperparameter `name`, in words for messages (the test
/// `domains_agree_with_core` holds them to core's checks).
pub fn domain(name: &str) -> String {
    match name {
        "beta" => "finite and above 0".into(),
        "tau" => format!("finite and at least {}", IpoConfig::MIN_TAU),
        "lambda" | "desirable_weight" | "undesirable_weight" | "z0" => {
            "finite and at least 0".into()
        }
        _ => "finite".into(),
    }
}

/// Core's refusal of an objective's configuration as the trainer says it: the objective named
/// once, then the parameter, its value and its range, with the parameter as the caller names
/// it (`names`).
pub fn config_error(e: BnfError, names: Names) -> String {
    match e {
        BnfError::InvalidConfig {
            objective,
            what,
            value,
        } => format!(
            "objective {objective}: {what} = {value} is out of range ({} must be {})",
            names.of(what),
            domain(what)
        ),
        other => format!("objective: {other}"),
    }
}

/// `obj` with the hyperparameters `given` set, then checked by core (`beta > 0`, ...). A
/// parameter the objective does not have is an error, not ignored. The messages name the
/// parameters as the caller does (`names`).
pub fn with_params(
    obj: Objective,
    given: &[(&str, f32)],
    names: Names,
) -> Result<Objective, String> {
    let mut out = obj;
    for &(name, value) in given {
        if !out.set_param(name, value) {
            let own: Vec<String> = obj.params().iter().map(|(n, _)| names.of(n)).collect();
            let has = if own.is_empty() {
                "it has no hyperparameters".to_string()
            } else {
                format!("its hyperparameters: {}", own.join(", "))
            };
            return Err(format!(
                "objective {} does not use {} ({has})",
                obj.name(),
                names.of(name)
            ));
        }
    }
    out.validate().map_err(|e| config_error(e, names))?;
    Ok(out)
}

/// The objective called `name` (any name `Objective::parse` accepts) with `given` set (see
/// [`with_params`]); the messages name the parameters by their fields.
pub fn build(name: &str, given: &[(&str, f32)]) -> Result<Objective, String> {
    build_named(name, given, Names::FIELDS)
}

/// [`build`] with the messages naming the parameters as the caller does (`names`: the command
/// line passes its flags).
pub fn build_named(name: &str, given: &[(&str, f32)], names: Names) -> Result<Objective, String> {
    let obj = Objective::parse(name).ok_or_else(|| {
        format!(
            "unknown objective \"{name}\" (available: {})",
            OBJECTIVE_NAMES.join(", ")
        )
    })?;
    with_params(obj, given, names)
}

/// One line per objective: its name, what data it needs, its hyperparameters (as the caller
/// names them, `names`) and defaults.
pub fn describe_all(names: Names) -> String {
    let mut out = String::new();
    for name in OBJECTIVE_NAMES {
        let obj = Objective::parse(name).expect("core parses its own names");
        let needs = match (obj.needs_pairs(), obj.needs_reference()) {
            (true, true) => "pairs, reference",
            (true, false) => "pairs",
            (false, true) => "reference",
            (false, false) => "-",
        };
        let ps: Vec<String> = obj
            .params()
            .iter()
            .map(|(n, v)| match v {
                Some(v) => format!("{} {v}", names.of(n)),
                None => format!("{} (unset: estimated per batch)", names.of(n)),
            })
            .collect();
        let line = format!("{name:<8} needs: {needs:<16} {}", ps.join("  "));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The objective in a run's JSON config: `{"name": "dpo", "beta": 0.1}`, every hyperparameter
/// written out (defaults included, so a resumed run does not depend on core's defaults); an
/// unset optional one is absent. A bare name (`"bnf"`, older checkpoints) reads as the
/// defaults. For `#[serde(with = "...")]`; its errors name the parameters by their fields.
pub mod record {
    use super::build;
    use bnf_core::Objective;
    use serde::de::Error as _;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    /// Write `obj` as a JSON object.
    pub fn serialize<S: Serializer>(obj: &Objective, s: S) -> Result<S::Ok, S::Error> {
        let ps = obj.params();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", obj.name())?;
        for (name, value) in ps {
            if let Some(v) = value {
                map.serialize_entry(name, &v)?;
            }
        }
        map.end()
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Name(String),
        Full {
            name: String,
            #[serde(flatten)]
            params: BTreeMap<String, f32>,
        },
    }

    /// Read what [`serialize`] wrote (or a bare name).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Objective, D::Error> {
        let (name, given) = match Repr::deserialize(d)? {
            Repr::Name(name) => (name, BTreeMap::new()),
            Repr::Full { name, params } => (name, params),
        };
        let given: Vec<(&str, f32)> = given.iter().map(|(n, &v)| (n.as_str(), v)).collect();
        build(&name, &given).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnf_core::{DpoConfig, KtoConfig, SimPoConfig};

    const FIELDS: Names = Names::FIELDS;

    /// A caller's names: flags.
    const FLAGS: Names = Names::new(|f| format!("--{}", f.replace('_', "-")), |s| s.into());

    #[test]
    fn every_core_name_builds_with_its_defaults() {
        for name in OBJECTIVE_NAMES {
            let obj = build(name, &[]).unwrap();
            assert_eq!(Some(obj), Objective::parse(name), "{name}");
            assert_eq!(obj.name(), *name);
        }
        assert_eq!(build("SLiC-HF", &[]).unwrap().name(), "slic_hf");
        let err = build("zzz", &[]).unwrap_err();
        assert!(err.contains("unknown") && err.contains("kto"), "{err}");
    }

    /// Each parameter of each objective is set by its name and lands in its own field.
    #[test]
    fn every_parameter_is_set_by_its_name() {
        for name in OBJECTIVE_NAMES {
            let obj = Objective::parse(name).unwrap();
            for (i, (p, _)) in obj.params().iter().enumerate() {
                let value = 0.25 + i as f32;
                let got = build(name, &[(p, value)]).unwrap();
                let mut want = obj.params();
                want[i].1 = Some(value);
                assert_eq!(got.params(), want, "{name} {p}");
            }
        }
    }

    /// The messages name the parameters by their fields, or as the caller does.
    #[test]
    fn a_parameter_the_objective_lacks_is_an_error() {
        let err = build("dpo", &[("gamma", 1.0)]).unwrap_err();
        assert_eq!(
            err,
            "objective dpo does not use gamma (its hyperparameters: beta)"
        );
        let err = build("bnf", &[("beta", 0.1)]).unwrap_err();
        assert_eq!(
            err,
            "objective bnf does not use beta (it has no hyperparameters)"
        );
        let err = build("dpo", &[("beta", -1.0)]).unwrap_err();
        assert_eq!(
            err,
            "objective dpo: beta = -1 is out of range (beta must be finite and above 0)"
        );
        let err = build_named("kto", &[("tau", 1.0)], FLAGS).unwrap_err();
        assert_eq!(
            err,
            "objective kto does not use --tau (its hyperparameters: --beta, \
             --desirable-weight, --undesirable-weight, --z0)"
        );
        let err = build_named("dpo", &[("beta", -1.0)], FLAGS).unwrap_err();
        assert_eq!(
            err,
            "objective dpo: beta = -1 is out of range (--beta must be finite and above 0)"
        );
        assert_eq!(
            build("dpo", &[("beta", 0.5)]).unwrap(),
            Objective::Dpo(DpoConfig { beta: 0.5 })
        );
    }

    /// What `domain` says of each parameter is what core checks: probed at the edges.
    #[test]
    fn domains_agree_with_core() {
        for name in OBJECTIVE_NAMES {
            let obj = Objective::parse(name).unwrap();
            for (p, _) in obj.params() {
                let (ok, bad): (Vec<f32>, Vec<f32>) = match domain(p).as_str() {
                    "finite and above 0" => (vec![f32::MIN_POSITIVE, 1e30], vec![0.0, -1.0]),
                    "finite and at least 0" => (vec![0.0, 1e30], vec![-f32::MIN_POSITIVE]),
                    "finite" => (vec![-1e30, 0.0, 1e30], vec![]),
                    d => {
                        assert_eq!(p, "tau", "{d}");
                        let min = IpoConfig::MIN_TAU;
                        (vec![min, 1e30], vec![min * 0.99, 0.0])
                    }
                };
                let bad = bad
                    .into_iter()
                    .chain([f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
                for v in ok {
                    let got = with_params(obj, &[(p, v)], FIELDS);
                    assert!(got.is_ok(), "{name} {p} = {v}");
                }
                for v in bad {
                    let err = with_params(obj, &[(p, v)], FIELDS).unwrap_err();
                    assert!(err.contains(&domain(p)), "{name} {p} = {v}: {err}");
                }
            }
        }
    }

    #[test]
    fn display_names_every_set_parameter() {
        let kto = build("kto", &[("beta", 0.5)]).unwrap();
        assert_eq!(
            display(&kto),
            "kto(beta=0.5, desirable_weight=1, undesirable_weight=1)"
        );
        assert_eq!(display(&Objective::Bnf), "bnf()");
    }

    #[test]
    fn describe_all_names_parameters_as_the_caller_does() {
        let fields = describe_all(FIELDS);
        let flags = describe_all(FLAGS);
        assert_eq!(fields.lines().count(), OBJECTIVE_NAMES.len());
        assert!(
            fields.contains(" beta 0.1") && !fields.contains("--"),
            "{fields}"
        );
        assert!(
            fields.contains("z0 (unset: estimated per batch)"),
            "{fields}"
        );
        assert!(flags.contains(" --beta 0.1") && flags.contains("--desirable-weight 1"));
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(with = "record")]
        objective: Objective,
    }

    #[test]
    fn records_round_trip_every_objective_bit_for_bit() {
        let mut rng = crate::rng::Rng::new(1);
        for name in OBJECTIVE_NAMES {
            let base = Objective::parse(name).unwrap();
            for _ in 0..50 {
                let given: Vec<(&str, f32)> = base
                    .params()
                    .iter()
                    .map(|(p, _)| (*p, (rng.uniform() * 3.0 + 1e-3) as f32))
                    .collect();
                let obj = with_params(base, &given, FIELDS).unwrap();
                let h = Holder { objective: obj };
                let json = serde_json::to_string(&h).unwrap();
                let back: Holder = serde_json::from_str(&json).unwrap();
                for ((p, a), (_, b)) in obj.params().iter().zip(back.objective.params()) {
                    assert_eq!(
                        a.map(f32::to_bits),
                        b.map(f32::to_bits),
                        "{name} {p}: {json}"
                    );
                }
                assert_eq!(back, h);
            }
        }
        let j = serde_json::to_string(&Holder {
            objective: Objective::SimPo(SimPoConfig::DEFAULT),
        })
        .unwrap();
        assert_eq!(
            j,
            r#"{"objective":{"name":"simpo","beta":2.5,"gamma":1.375}}"#
        );
        let kto: Holder =
            serde_json::from_str(r#"{"objective":{"name":"kto","beta":0.2,"desirable_weight":1,"undesirable_weight":2}}"#)
                .unwrap();
        assert_eq!(
            kto.objective,
            Objective::Kto(KtoConfig {
                beta: 0.2,
                undesirable_weight: 2.0,
                ..KtoConfig::DEFAULT
            })
        );
        let old: Holder = serde_json::from_str(r#"{"objective":"bnf"}"#).unwrap();
        assert_eq!(old.objective, Objective::Bnf);
        // A record is not a command line: its keys are the fields.
        let bad = serde_json::from_str::<Holder>(r#"{"objective":{"name":"dpo","gamma":1}}"#);
        let err = bad.unwrap_err().to_string();
        assert!(
            err.contains("does not use gamma") && !err.contains("--"),
            "{err}"
        );
    }
}
