//! The `oauth2` source: a token from a token endpoint, for keys brokered by
//! another system (refresh-token or client-credentials grant, RFC 6749 §6
//! and §4.4). A rotated refresh token is written to the store, in the same
//! transaction as the new access token, before the token is used: a crash
//! right after the exchange must not lose the only refresh token that still
//! works.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;
use serde::Deserialize;

use super::source::{Fetched, SourceContext};
use super::{ApiKey, CredentialError, OAuth2Grant, OAuth2Source};
use crate::store::{ConnectionState, SecretString, Store};

/// Token endpoints get this long to answer.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Gets a fresh access token.
///
/// # Errors
/// When the endpoint cannot be reached or refuses, or the store fails.
pub(super) async fn fetch(
    config: &OAuth2Source,
    ctx: &SourceContext,
) -> Result<Fetched, CredentialError> {
    // The exchange and the saving of a rotated refresh token run in their
    // own task: if the request that triggered the renewal is cancelled (a
    // client timeout, a probe), the broker has already rotated the token,
    // and only a finished save keeps the one that still works.
    let (task_config, task_ctx) = (config.clone(), ctx.clone());
    tokio::spawn(async move { exchange(&task_config, &task_ctx).await })
        .await
        .map_err(|e| ctx.error("oauth2", format!("the token task failed: {e}")))?
}

async fn exchange(config: &OAuth2Source, ctx: &SourceContext) -> Result<Fetched, CredentialError> {
    let err = |reason: String| ctx.error("oauth2", reason);
    let store = ctx.store("oauth2")?.clone();
    let refresh_token = match config.grant {
        OAuth2Grant::ClientCredentials => None,
        OAuth2Grant::RefreshToken => {
            let stored = blocking(&store, &ctx.connection, |s, c| s.secret(c, "refresh_token"))
                .await
                .map_err(&err)?;
            let token = match stored {
                Some(secret) => ApiKey::from_secret(&secret).map_err(|e| err(e.to_string()))?,
                None => config.initial_refresh_token.clone().ok_or_else(|| err("no refresh token: set the configured refresh_token_env variable once; rotated tokens are kept in the store".into()))?,
            };
            Some(token)
        }
    };
    let mut form: Vec<(&str, &str)> = vec![("client_id", config.client_id.as_str())];
    match &refresh_token {
        Some(token) => form.extend([
            ("grant_type", "refresh_token"),
            ("refresh_token", token.expose_for_form()),
        ]),
        None => form.push(("grant_type", "client_credentials")),
    }
    if let Some(secret) = &config.client_secret {
        form.push(("client_secret", secret.expose_for_form()));
    }
    if let Some(scope) = &config.scope {
        form.push(("scope", scope.as_str()));
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = ctx
        .http
        .post(config.token_url.clone())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .timeout(TOKEN_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            err(format!(
                "cannot reach the token endpoint {}: {}",
                config.token_url,
                crate::upstream::error_chain(&e.without_url())
            ))
        })?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| err(format!("reading the token reply: {e}")))?;
    if !status.is_success() {
        let detail = serde_json::from_slice::<TokenError>(&bytes)
            .map(|e| {
                format!(
                    "{}{}",
                    e.error,
                    e.error_description
                        .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_else(|_| "no OAuth2 error body".to_owned());
        return Err(err(format!(
            "the token endpoint answered {status} ({detail})"
        )));
    }
    let reply: TokenReply = serde_json::from_slice(&bytes)
        .map_err(|_| err("the token reply has no access_token".into()))?;
    let key = ApiKey::parse(&reply.access_token).map_err(|e| err(format!("access_token: {e}")))?;
    let now = ctx.clock.now();
    let expires_at = reply.expires_in.map(|s| now + Duration::from_secs(s));
    let rotated = reply
        .refresh_token
        .as_deref()
        .map(ApiKey::parse)
        .transpose()
        .map_err(|e| err(format!("refresh_token: {e}")))?;

    let access = key.to_secret();
    let refresh = rotated.as_ref().map(ApiKey::to_secret);
    let state = ConnectionState {
        connection: ctx.connection.clone(),
        source_kind: "oauth2".into(),
        key_id: key.id().map(str::to_owned),
        expires_at: expires_at.map(unix),
        last_renewal_at: Some(unix(now)),
        last_error: None,
        needs_attention: false,
        updated_at: unix(now),
        base_url: None,
    };
    let connection = ctx.connection.clone();
    tokio::task::spawn_blocking(move || {
        let mut secrets: Vec<(&str, &SecretString)> = vec![("access_token", &access)];
        if let Some(r) = &refresh {
            secrets.push(("refresh_token", r));
        }
        store.save(&connection, &secrets, &state)
    })
    .await
    .map_err(|e| err(e.to_string()))?
    .map_err(|e| err(format!("saving the new tokens: {e}")))?;
    tracing::info!(connection = %ctx.connection, rotated = rotated.is_some(), "oauth2 token obtained");
    Ok(Fetched {
        key,
        expires_at,
        file_stamp: None,
    })
}

/// Reads an unexpired access token kept from an earlier run, so a restart
/// does not cost a token request.
pub(super) async fn stored_access_token(ctx: &SourceContext) -> Option<Fetched> {
    let store = ctx.store.clone()?;
    let connection = ctx.connection.clone();
    let (secret, state) = tokio::task::spawn_blocking(move || {
        Some((
            store.secret(&connection, "access_token").ok()??,
            store.state(&connection).ok()??,
        ))
    })
    .await
    .ok()??;
    let expires_at = UNIX_EPOCH + Duration::from_secs(u64::try_from(state.expires_at?).ok()?);
    let key = ApiKey::parse(secret.expose_secret()).ok()?;
    Some(Fetched {
        key,
        expires_at: Some(expires_at),
        file_stamp: None,
    })
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    connection: &str,
    f: impl FnOnce(&dyn Store, &str) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    let connection = connection.to_owned();
    tokio::task::spawn_blocking(move || f(store.as_ref(), &connection))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
