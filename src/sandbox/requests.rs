//! Requests of the connect flow (API-FACTS §6): what `requestApiKey` asked
//! for, under an unguessable token, and what the vendor decided on the
//! approval page.

use std::collections::{HashMap, VecDeque};

use super::keys::{Permission, random_text};

/// Length of a request token: 32 letters/digits carry about 190 bits, far
/// beyond guessing, and still fit a URL nicely.
const TOKEN_LEN: usize = 32;

/// How many requests a sandbox remembers; the oldest is forgotten first.
/// Tests stay far below it; the bound keeps a long-running sandbox that a
/// script polls in a loop from growing without end.
const REQUEST_LIMIT: usize = 1000;

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Waiting for the vendor.
    Pending,
    /// Approved; the next `retrieveApiKey` mints the key.
    Approved,
    /// The vendor clicked Abort.
    Aborted,
    /// The key was handed out; the token is spent.
    Used,
}

/// A button on the approval page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Approve,
    Abort,
}

/// One `requestApiKey` call.
#[derive(Clone, Debug)]
pub(crate) struct KeyRequest {
    /// The level the new key gets.
    pub permission: Permission,
    /// Where the vendor's browser goes after approving.
    pub return_url: String,
    /// Where it goes after aborting (the return URL when not given).
    pub cancel_url: Option<String>,
    /// The site that will use the key, as the developer named it.
    pub site_url: Option<String>,
    /// The developer's note for the vendor.
    pub comment: Option<String>,
    pub status: Status,
}

/// The requests by token, remembering the order they came in.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    by_token: HashMap<String, KeyRequest>,
    order: VecDeque<String>,
}

impl Requests {
    /// Stores a new request and returns its fresh token.
    pub fn add(&mut self, request: KeyRequest) -> String {
        if self.order.len() >= REQUEST_LIMIT
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_token.remove(&oldest);
        }
        let token = random_text(TOKEN_LEN);
        self.order.push_back(token.clone());
        self.by_token.insert(token.clone(), request);
        token
    }

    /// The request under `token`.
    pub fn get(&self, token: &str) -> Option<&KeyRequest> {
        self.by_token.get(token)
    }

    /// The request under `token`, to change its status.
    pub fn get_mut(&mut self, token: &str) -> Option<&mut KeyRequest> {
        self.by_token.get_mut(token)
    }

    /// Records the vendor's decision on a pending request; `false` when the
    /// token is unknown or was decided before.
    pub fn decide(&mut self, token: &str, decision: Decision) -> bool {
        match self.by_token.get_mut(token) {
            Some(request) if request.status == Status::Pending => {
                request.status = match decision {
                    Decision::Approve => Status::Approved,
                    Decision::Abort => Status::Aborted,
                };
                true
            }
            _ => false,
        }
    }

    /// Tokens still waiting for a decision, oldest first.
    pub fn pending(&self) -> Vec<String> {
        self.order
            .iter()
            .filter(|t| self.get(t).is_some_and(|r| r.status == Status::Pending))
            .cloned()
            .collect()
    }

    /// How many requests are remembered.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }
}
