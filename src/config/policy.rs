//! Validating a `[[policies]]` entry into a [`crate::policy::Policy`]:
//! effect names, and function names or action keys resolved against the
//! catalog, so a typo cannot silently allow or deny nothing.

use super::ConfigError;
use super::file::RawPolicy;
use crate::actions::{self, Effect};
use crate::policy::Policy;

pub(super) fn policy(raw: &RawPolicy, at: &dyn Fn(&str) -> String) -> Result<Policy, ConfigError> {
    let effects = raw
        .effects
        .as_ref()
        .map(|list| {
            list.iter()
                .map(|e| match e.as_str() {
                    "read" => Ok(Effect::Read),
                    "write" => Ok(Effect::Write),
                    "money" => Ok(Effect::Money),
                    other => Err(ConfigError::new(
                        at("effects"),
                        format!("`{other}` is not an effect"),
                        "use read, write and/or money",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let functions = |field: &str, list: &[String]| -> Result<Vec<String>, ConfigError> {
        list.iter()
            .map(|f| {
                actions::find(f)
                    .map(|a| a.function.to_owned())
                    .ok_or_else(|| {
                        let close = actions::suggest(f, 3).join(", ");
                        ConfigError::new(
                            at(field),
                            format!("`{f}` is not a Digistore24 function or action"),
                            format!("use a function name or action key, e.g. {close}"),
                        )
                    })
            })
            .collect()
    };
    Ok(Policy {
        effects,
        allow_functions: raw
            .allow_functions
            .as_deref()
            .map(|l| functions("allow_functions", l))
            .transpose()?,
        deny_functions: functions("deny_functions", &raw.deny_functions)?,
        connections: raw.connections.clone(),
    })
}
