//! The objective's hyperparameters by name: set from the command line (`--beta`, `--tau`, ...)
//! or a program, listed by `bnf objectives`, and recorded in a run's config so a resumed run
//! uses the values the run started with. The objective itself is `bnf_core::Objective`; this
//! file only names the fields of its typed configurations.

use bnf_core::{BnfError, IpoConfig, Objective, OBJECTIVE_NAMES};
use clap::Args;

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
/// once, then the parameter, its value and its range, with the flag that sets it.
pub fn config_error(e: BnfError) -> String {
    match e {
        BnfError::InvalidConfig {
            objective,
            what,
            value,
        } => format!(
            "objective {objective}: {what} = {value} is out of range ({} must be {})",
            flag(what),
            domain(what)
        ),
        other => format!("objective: {other}"),
    }
}

/// The command-line spelling of a parameter name.
fn flag(name: &str) -> String {
    format!("--{}", name.replace('_', "-"))
}

/// `obj` with the hyperparameters `given` set, then checked by core (`beta > 0`, ...). A
/// parameter the objective does not have is an error, not ignored.
pub fn with_params(obj: Objective, given: &[(&str, f32)]) -> Result<Objective, String> {
    let mut out = obj;
    for &(name, value) in given {
        if !out.set_param(name, value) {
            let own: Vec<String> = obj.params().iter().map(|(n, _)| flag(n)).collect();
            let has = if own.is_empty() {
                "it has no hyperparameters".to_string()
            } else {
                format!("its hyperparameters: {}", own.join(", "))
            };
            return Err(format!(
                "objective {} does not use {} ({has})",
                obj.name(),
                flag(name)
            ));
        }
    }
    out.validate().map_err(config_error)?;
    Ok(out)
}

/// The objective called `name` (any name `Objective::parse` accepts) with `given` set.
pub fn build(name: &str, given: &[(&str, f32)]) -> Result<Objective, String> {
    let obj = Objective::parse(name).ok_or_else(|| {
        format!(
            "unknown objective \"{name}\" (available: {})",
            OBJECTIVE_NAMES.join(", ")
        )
    })?;
    with_params(obj, given)
}

/// One line per objective: its name, what data it needs, its hyperparameters and defaults.
pub fn describe_all() -> String {
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
                Some(v) => format!("{} {v}", flag(n)),
                None => format!("{} (unset: estimated per batch)", flag(n)),
            })
            .collect();
        let line = format!("{name:<8} needs: {needs:<16} {}", ps.join("  "));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `--objective` and its hyperparameters on the command line. Every value given must belong to
/// the chosen objective. Values may be negative (`--gamma -0.5`); core checks each one's range.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct ObjectiveArgs {
    /// Objective, any of `bnf objectives` (default: bnf for align, nll for sft).
    #[arg(long)]
    pub objective: Option<String>,
    /// Inverse temperature / reward scale beta (dpo, simpo, rdpo, cpo, kto).
    #[arg(long, allow_negative_numbers = true)]
    pub beta: Option<f32>,
    /// IPO's tau (target margin 1 / (2 tau)).
    #[arg(long, allow_negative_numbers = true)]
    pub tau: Option<f32>,
    /// SimPO's target margin gamma.
    #[arg(long, allow_negative_numbers = true)]
    pub gamma: Option<f32>,
    /// R-DPO's length-difference weight alpha.
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f32>,
    /// Weight lambda (SLiC-HF's NLL term, ORPO's odds-ratio term).
    #[arg(long, allow_negative_numbers = true)]
    pub lambda: Option<f32>,
    /// SLiC-HF's hinge margin.
    #[arg(long, allow_negative_numbers = true)]
    pub margin: Option<f32>,
    /// KTO's weight of desirable (preferred) responses.
    #[arg(long, allow_negative_numbers = true)]
    pub desirable_weight: Option<f32>,
    /// KTO's weight of undesirable (dispreferred) responses.
    #[arg(long, allow_negative_numbers = true)]
    pub undesirable_weight: Option<f32>,
    /// KTO's reference point z0, held fixed (default: estimated from each micro-batch).
    #[arg(long, allow_negative_numbers = true)]
    pub z0: Option<f32>,
}

impl ObjectiveArgs {
    /// The hyperparameters given, by core's names.
    pub fn given(&self) -> Vec<(&'static str, f32)> {
        [
            ("beta", self.beta),
            ("tau", self.tau),
            ("gamma", self.gamma),
            ("alpha", self.alpha),
            ("lambda", self.lambda),
            ("margin", self.margin),
            ("desirable_weight", self.desirable_weight),
            ("undesirable_weight", self.undesirable_weight),
            ("z0", self.z0),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect()
    }

    /// The objective these arguments name (`default` when `--objective` is absent), with its
    /// hyperparameters set.
    pub fn resolve(&self, default: &str) -> Result<Objective, String> {
        build(self.objective.as_deref().unwrap_or(default), &self.given())
    }

    /// The objective of `sft`: NLL, which has no hyperparameters; any other objective or
    /// hyperparameter is an error.
    pub fn resolve_sft(&self) -> Result<Objective, String> {
        let obj = self.resolve("nll")?;
        if obj != Objective::Nll {
            return Err(format!(
                "sft trains with nll; to train with {} use `bnf align --objective {}`",
                obj.name(),
                obj.name()
            ));
        }
        Ok(obj)
    }
}

/// The objective in a run's JSON config: `{"name": "dpo", "beta": 0.1}`, every hyperparameter
/// written out (defaults included, so a resumed run does not depend on core's defaults); an
/// unset optional one is absent. A bare name (`"bnf"`, older checkpoints) reads as the
/// defaults. For `#[serde(with = "...")]`.
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
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: ObjectiveArgs,
    }

    fn parse(argv: &[&str]) -> ObjectiveArgs {
        Cmd::try_parse_from(std::iter::once("x").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn every_core_name_parses_with_its_defaults() {
        for name in OBJECTIVE_NAMES {
            let obj = parse(&["--objective", name]).resolve("bnf").unwrap();
            assert_eq!(Some(obj), Objective::parse(name), "{name}");
            assert_eq!(obj.name(), *name);
        }
        assert_eq!(parse(&[]).resolve("bnf").unwrap(), Objective::Bnf);
        assert_eq!(
            parse(&["--objective", "SLiC-HF"])
                .resolve("bnf")
                .unwrap()
                .name(),
            "slic_hf"
        );
        let err = parse(&["--objective", "zzz"]).resolve("bnf").unwrap_err();
        assert!(err.contains("unknown") && err.contains("kto"), "{err}");
    }

    /// Each parameter of each objective is reachable by its flag and lands in its own field.
    #[test]
    fn every_parameter_has_a_flag() {
        for name in OBJECTIVE_NAMES {
            let obj = Objective::parse(name).unwrap();
            for (i, (p, _)) in obj.params().iter().enumerate() {
                let value = 0.25 + i as f32;
                let got = parse(&["--objective", name, &flag(p), &value.to_string()])
                    .resolve("bnf")
                    .unwrap();
                let mut want = obj.params();
                want[i].1 = Some(value);
                assert_eq!(got.params(), want, "{name} {}", flag(p));
            }
        }
        // And every flag belongs to some objective.
        let all = ObjectiveArgs {
            beta: Some(1.0),
            tau: Some(1.0),
            gamma: Some(1.0),
            alpha: Some(1.0),
            lambda: Some(1.0),
            margin: Some(1.0),
            desirable_weight: Some(1.0),
            undesirable_weight: Some(1.0),
            z0: Some(1.0),
            objective: None,
        };
        for (p, _) in all.given() {
            assert!(
                OBJECTIVE_NAMES.iter().any(|n| Objective::parse(n)
                    .unwrap()
                    .params()
                    .iter()
                    .any(|(q, _)| *q == p)),
                "{p}"
            );
        }
    }

    #[test]
    fn a_parameter_the_objective_lacks_is_an_error() {
        let err = parse(&["--objective", "dpo", "--gamma", "1"])
            .resolve("bnf")
            .unwrap_err();
        assert!(
            err.contains("dpo does not use --gamma") && err.contains("--beta"),
            "{err}"
        );
        let err = parse(&["--beta", "0.1"]).resolve("bnf").unwrap_err();
        assert!(
            err.contains("bnf does not use --beta") && err.contains("no hyperparameters"),
            "{err}"
        );
        let err = parse(&["--objective", "dpo", "--beta", "-1"])
            .resolve("bnf")
            .unwrap_err();
        assert_eq!(
            err,
            "objective dpo: beta = -1 is out of range (--beta must be finite and above 0)"
        );
        assert_eq!(
            parse(&["--objective", "dpo", "--beta", "0.5"])
                .resolve("bnf")
                .unwrap(),
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
                    assert!(with_params(obj, &[(p, v)]).is_ok(), "{name} {p} = {v}");
                }
                for v in bad {
                    let err = with_params(obj, &[(p, v)]).unwrap_err();
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
    fn sft_takes_only_nll() {
        assert_eq!(parse(&[]).resolve_sft().unwrap(), Objective::Nll);
        assert_eq!(
            parse(&["--objective", "sft"]).resolve_sft().unwrap(),
            Objective::Nll
        );
        let err = parse(&["--objective", "dpo"]).resolve_sft().unwrap_err();
        assert!(err.contains("align --objective dpo"), "{err}");
        assert!(parse(&["--beta", "1"]).resolve_sft().is_err());
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
                let obj = with_params(base, &given).unwrap();
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
        let bad = serde_json::from_str::<Holder>(r#"{"objective":{"name":"dpo","gamma":1}}"#);
        assert!(bad.unwrap_err().to_string().contains("--gamma"));
    }
}
