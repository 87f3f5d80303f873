//! PLACEHOLDER — replaced by the real store module (interface only).
#![allow(missing_docs, dead_code, clippy::needless_pass_by_value)]
pub use secrecy::SecretString;
pub const DB_FILE: &str = "ds24-proxy.db";
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionState {
    pub connection: String,
    pub source_kind: String,
    pub key_id: Option<String>,
    pub expires_at: Option<i64>,
    pub last_renewal_at: Option<i64>,
    pub last_error: Option<String>,
    pub needs_attention: bool,
    pub updated_at: i64,
}
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Other(String),
}
pub trait Store: Send + Sync + std::fmt::Debug {
    fn save(
        &self,
        connection: &str,
        secrets: &[(&str, &SecretString)],
        state: &ConnectionState,
    ) -> Result<(), StoreError>;
    fn secret(&self, connection: &str, name: &str) -> Result<Option<SecretString>, StoreError>;
    fn state(&self, connection: &str) -> Result<Option<ConnectionState>, StoreError>;
    fn states(&self) -> Result<Vec<ConnectionState>, StoreError>;
    fn save_state(&self, state: &ConnectionState) -> Result<(), StoreError>;
    fn remove(&self, connection: &str) -> Result<bool, StoreError>;
}
#[derive(Debug)]
pub struct SqliteStore;
impl SqliteStore {
    pub fn open(
        _data_dir: &std::path::Path,
        _master_key: Option<&SecretString>,
    ) -> Result<Self, StoreError> {
        Err(StoreError::Other("placeholder".into()))
    }
}
impl Store for SqliteStore {
    fn save(
        &self,
        _: &str,
        _: &[(&str, &SecretString)],
        _: &ConnectionState,
    ) -> Result<(), StoreError> {
        unreachable!()
    }
    fn secret(&self, _: &str, _: &str) -> Result<Option<SecretString>, StoreError> {
        unreachable!()
    }
    fn state(&self, _: &str) -> Result<Option<ConnectionState>, StoreError> {
        unreachable!()
    }
    fn states(&self) -> Result<Vec<ConnectionState>, StoreError> {
        unreachable!()
    }
    fn save_state(&self, _: &ConnectionState) -> Result<(), StoreError> {
        unreachable!()
    }
    fn remove(&self, _: &str) -> Result<bool, StoreError> {
        unreachable!()
    }
}
