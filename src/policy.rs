//! Who is calling, and what they may do. An inbound token carries a name
//! (for the audit log) and optionally a policy: the effects it may use
//! (`read` only, say, for an AI agent), functions it may or may not call,
//! and the connections it may use. A denied call gets
//! `403 forbidden_by_policy` before anything is sent.

use std::sync::Arc;

use crate::actions::Effect;

/// What a token may do. `None` fields allow everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Allowed effects.
    pub effects: Option<Vec<Effect>>,
    /// Only these functions (Digistore24 names).
    pub allow_functions: Option<Vec<String>>,
    /// Never these functions.
    pub deny_functions: Vec<String>,
    /// Only these connections.
    pub connections: Option<Vec<String>>,
}

/// The caller of one request, as the token check found it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Identity for logs and the audit log (a name, never the token).
    pub name: Arc<str>,
    /// Its policy, if it has one.
    pub policy: Option<Arc<Policy>>,
}

impl Caller {
    /// A caller when no tokens are configured (loopback use).
    pub fn anonymous() -> Self {
        Self {
            name: "anonymous".into(),
            policy: None,
        }
    }

    /// Checks one call against the policy.
    ///
    /// # Errors
    /// A sentence saying what the policy does not allow.
    pub fn check(&self, connection: &str, function: &str, effect: Effect) -> Result<(), String> {
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        if let Some(allowed) = &policy.connections
            && !allowed.iter().any(|c| c == connection)
        {
            return Err(format!(
                "token `{}` may not use connection `{connection}`",
                self.name
            ));
        }
        if let Some(effects) = &policy.effects
            && !effects.contains(&effect)
        {
            let name = match effect {
                Effect::Read => "read",
                Effect::Write => "write",
                Effect::Money => "money",
            };
            return Err(format!(
                "token `{}` may not make {name} calls ({function} is {name})",
                self.name
            ));
        }
        if policy.deny_functions.iter().any(|f| f == function) {
            return Err(format!("token `{}` may not call {function}", self.name));
        }
        if let Some(allowed) = &policy.allow_functions
            && !allowed.iter().any(|f| f == function)
        {
            return Err(format!(
                "token `{}` may only call {}",
                self.name,
                allowed.join(", ")
            ));
        }
        Ok(())
    }
}

/// A call the caller's policy does not allow; nothing was sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{why}; nothing was sent to Digistore24")]
pub struct Denied {
    /// What the policy does not allow.
    pub why: String,
    /// Who was refused (a token's name, never the token).
    pub caller: Arc<str>,
}

/// The caller of a request (set by the token check) and whether it may make
/// this call.
///
/// # Errors
/// [`Denied`] with what the policy does not allow.
pub fn authorize(
    extensions: &http::Extensions,
    connection: &str,
    function: &str,
    effect: Effect,
) -> Result<Caller, Denied> {
    let caller = extensions
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anonymous);
    // A function the catalog does not know could do anything: it needs the
    // right to move money as well as to write.
    let unknown = crate::actions::canonical(function).is_none();
    let checked = caller.check(connection, function, effect).and_then(|()| {
        if unknown {
            caller.check(connection, function, Effect::Money)
        } else {
            Ok(())
        }
    });
    checked.map_err(|why| {
        tracing::warn!(caller = %caller.name, function, connection, "call refused by policy");
        Denied {
            why,
            caller: caller.name.clone(),
        }
    })?;
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(policy: Policy) -> Caller {
        Caller {
            name: "agent".into(),
            policy: Some(Arc::new(policy)),
        }
    }

    #[test]
    fn a_read_only_token_may_read_but_not_write_or_move_money() {
        let agent = caller(Policy {
            effects: Some(vec![Effect::Read]),
            ..Policy::default()
        });
        assert!(agent.check("main", "listProducts", Effect::Read).is_ok());
        assert!(
            agent
                .check("main", "updateProduct", Effect::Write)
                .unwrap_err()
                .contains("write")
        );
        assert!(
            agent
                .check("main", "refundPurchase", Effect::Money)
                .unwrap_err()
                .contains("money")
        );
    }

    #[test]
    fn function_lists_and_connections_narrow_further() {
        let agent = caller(Policy {
            allow_functions: Some(vec!["getPurchase".into(), "refundPurchase".into()]),
            deny_functions: vec!["refundPurchase".into()],
            connections: Some(vec!["main".into()]),
            ..Policy::default()
        });
        assert!(agent.check("main", "getPurchase", Effect::Read).is_ok());
        assert!(
            agent
                .check("main", "refundPurchase", Effect::Money)
                .is_err(),
            "deny wins over allow"
        );
        assert!(agent.check("main", "listProducts", Effect::Read).is_err());
        assert!(
            agent
                .check("shop2", "getPurchase", Effect::Read)
                .unwrap_err()
                .contains("shop2")
        );
        assert!(
            Caller::anonymous()
                .check("x", "refundPurchase", Effect::Money)
                .is_ok()
        );
    }
}
