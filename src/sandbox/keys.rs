//! The keys a sandbox accepts: the three built-in ones, keys minted by the
//! connect flow (API-FACTS §6) and keys tests add; plus the key control
//! methods of [`Sandbox`].

use std::collections::HashMap;
use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;

use super::auth::ApiKey;
use super::requests::{Decision, Requests};
use super::{DEVELOPER_KEY, READONLY_KEY, Sandbox, WRITABLE_KEY};

/// Id of the first key the connect flow mints; the built-in keys use
/// `1000`–`1002`, so minted ones can never be mistaken for them.
const FIRST_MINTED_ID: u64 = 2000;

/// Length of a minted key's secret: Digistore24's documented example is
/// `123-` followed by 40 letters/digits (API-FACTS §2).
const SECRET_LEN: usize = 40;

/// What a key may do, named as Digistore24 names the levels (API-FACTS §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// May call read functions only (and `unregister` itself).
    Readonly,
    /// Full access.
    Writable,
    /// May only run the connect flow: `requestApiKey` and `retrieveApiKey`.
    Developer,
}

impl Permission {
    /// The level as Digistore24 spells it: `readonly`, `writable` or
    /// `developer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Readonly => "readonly",
            Self::Writable => "writable",
            Self::Developer => "developer",
        }
    }
}

/// The keys every sandbox starts with. They stand for keys made in the
/// vendor UI, which `unregister` may not delete.
const BUILTIN: [(&str, Permission); 3] = [
    (WRITABLE_KEY, Permission::Writable),
    (READONLY_KEY, Permission::Readonly),
    (DEVELOPER_KEY, Permission::Developer),
];

/// What the sandbox knows about one key.
#[derive(Clone, Debug)]
struct Entry {
    id: String,
    permission: Permission,
    /// Created by the connect flow (or a test), so `unregister` may delete
    /// it: every key but the built-in ones.
    interactive: bool,
}

/// Every key the sandbox accepts, and the connect requests that may mint
/// more. One lock guards both, so approving, minting and consuming a token
/// happen as one step.
#[derive(Default)]
pub(crate) struct Keys {
    known: HashMap<String, Entry>,
    /// Requests of the connect flow, by token.
    pub requests: Requests,
    next_id: u64,
}

/// Counts only: the map's keys are the secrets.
impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("known", &self.known.len())
            .field("requests", &self.requests.len())
            .field("next_id", &self.next_id)
            .finish()
    }
}

impl Keys {
    /// The built-in keys and nothing else.
    pub fn builtin() -> Self {
        let mut keys = Self {
            next_id: FIRST_MINTED_ID,
            ..Self::default()
        };
        for (key, permission) in BUILTIN {
            keys.insert(key, permission);
        }
        keys
    }

    /// The key as sent, if the sandbox accepts it.
    pub fn find(&self, key: &str) -> Option<ApiKey> {
        self.known.get(key).map(|entry| ApiKey {
            text: key.to_owned(),
            id: entry.id.clone(),
            permission: entry.permission,
            interactive: entry.interactive,
        })
    }

    /// Accepts `key` with `permission` from now on (a key already accepted
    /// just changes its permission).
    pub fn insert(&mut self, key: &str, permission: Permission) {
        self.known.insert(
            key.to_owned(),
            Entry {
                id: id_of(key).to_owned(),
                permission,
                interactive: !BUILTIN.iter().any(|(builtin, _)| *builtin == key),
            },
        );
    }

    /// Stops accepting `key`; whether it was known.
    pub fn remove(&mut self, key: &str) -> bool {
        self.known.remove(key).is_some()
    }

    /// Creates a new interactive key, `<id>-<40 letters/digits>`, with an
    /// id from 2000 up that no accepted key uses yet.
    pub fn mint(&mut self, permission: Permission) -> String {
        let used: Vec<&str> = self.known.values().map(|e| e.id.as_str()).collect();
        let mut id = self.next_id;
        while used.contains(&id.to_string().as_str()) {
            id += 1;
        }
        self.next_id = id + 1;
        let key = format!("{id}-{}", random_text(SECRET_LEN));
        self.insert(&key, permission);
        key
    }
}

/// The numeric prefix Digistore24 uses as key id (the whole key if it has
/// no `-`, as a test's made-up key might not).
fn id_of(key: &str) -> &str {
    key.split_once('-').map_or(key, |(id, _)| id)
}

/// Random letters and digits from the thread's CSPRNG, for secrets and
/// tokens nobody should guess.
pub(crate) fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

// === impl Sandbox: key control for tests ===

impl Sandbox {
    /// Makes the sandbox accept `key` with `permission`, as if the vendor
    /// had connected it interactively, so `unregister` may delete it. A key
    /// it already accepts just gets the new permission; a built-in key
    /// (also one revoked before) stays one that `unregister` refuses.
    pub fn add_key(&self, key: &str, permission: Permission) {
        self.keys().insert(key, permission);
    }

    /// Revokes `key`: from now on it gets code 2 "Invalid connection
    /// parameters.", as a key deleted in the vendor UI would. Works on the
    /// built-in keys too; [`Sandbox::add_key`] brings a key back.
    pub fn revoke_key(&self, key: &str) {
        self.keys().remove(key);
    }

    /// Approves a pending connect request, as the page's **Approve** button
    /// does.
    ///
    /// # Returns
    /// `true` when `token` named a pending request; `false` for an unknown
    /// token or one already decided (a decision is final).
    pub fn approve(&self, token: &str) -> bool {
        self.keys().requests.decide(token, Decision::Approve)
    }

    /// Aborts a pending connect request, as the page's **Abort** button
    /// does.
    ///
    /// # Returns
    /// `true` when `token` named a pending request; `false` otherwise.
    pub fn abort(&self, token: &str) -> bool {
        self.keys().requests.decide(token, Decision::Abort)
    }

    /// Tokens of the connect requests still waiting for a decision, oldest
    /// first.
    pub fn pending_tokens(&self) -> Vec<String> {
        self.keys().requests.pending()
    }
}
