//! Files of the data directory: the directory itself (0700), the database
//! file (0600, made before SQLite opens it so its `-wal`/`-shm` files, which
//! SQLite creates with the database's mode, are 0600 too) and the master key
//! file (0600, created atomically with that mode).
//!
//! On non-Unix systems the modes are not set or checked.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use secrecy::zeroize::Zeroizing;

use super::StoreError;
use super::crypto::{self, KEY_LEN};
use super::error::KeySource;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Permission bits for group and others.
#[cfg(unix)]
const GROUP_OTHER: u32 = 0o077;

/// A key file is at most this long (64 hex characters and a newline, with
/// room for whitespace or base64).
const KEY_FILE_MAX: u64 = 1024;

/// Creates the data directory (and missing parents) with mode 0700. An
/// existing directory with group or other bits is tightened to 0700: it is
/// ds24-proxy's own and holds the key file.
pub(super) fn ensure_data_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder
        .create(dir)
        .map_err(|e| StoreError::io("create the data directory", dir, e))?;
    #[cfg(unix)]
    {
        let meta =
            fs::metadata(dir).map_err(|e| StoreError::io("inspect the data directory", dir, e))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & GROUP_OTHER != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| StoreError::io("restrict to mode 0700 the data directory", dir, e))?;
            tracing::warn!(
                path = %dir.display(),
                old_mode = format_args!("{mode:04o}"),
                "the data directory was open to other users; its mode is now 0700"
            );
        }
    }
    Ok(())
}

/// Makes sure the database file exists with mode 0600 before SQLite opens it,
/// and tightens an existing database (and its `-wal`/`-shm` files) to 0600.
pub(super) fn prepare_db_file(db_path: &Path) -> Result<(), StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(0o600);
    options
        .open(db_path)
        .map_err(|e| StoreError::io("create the database file", db_path, e))?;
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db_path.as_os_str().to_owned();
        path.push(suffix);
        let path = PathBuf::from(path);
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & GROUP_OTHER != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::io("restrict to mode 0600", &path, e))?;
            tracing::warn!(
                path = %path.display(),
                old_mode = format_args!("{mode:04o}"),
                "a store file was open to other users; its mode is now 0600"
            );
        }
    }
    Ok(())
}

/// Reads the key file, `None` if there is none. Refuses a file that group or
/// others can access.
pub(super) fn read_key_file(path: &Path) -> Result<Option<Zeroizing<[u8; KEY_LEN]>>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("open the master key file", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| StoreError::io("inspect the master key file", path, e))?;
    if !meta.is_file() {
        return Err(StoreError::BadMasterKey {
            key_source: KeySource::File(path.to_owned()),
            reason: "it is not a regular file".into(),
        });
    }
    #[cfg(unix)]
    {
        let mode = meta.permissions().mode() & 0o7777;
        if mode & GROUP_OTHER != 0 {
            return Err(StoreError::InsecureKeyFile {
                path: path.to_owned(),
                mode,
            });
        }
    }
    // Room for the whole file up front, so reading never reallocates and
    // leaves a copy of the key behind.
    let mut text = Zeroizing::new(String::with_capacity(KEY_FILE_MAX as usize + 1));
    file.take(KEY_FILE_MAX)
        .read_to_string(&mut text)
        .map_err(|e| StoreError::io("read the master key file", path, e))?;
    crypto::parse_key(&text)
        .map(Some)
        .map_err(|reason| StoreError::BadMasterKey {
            key_source: KeySource::File(path.to_owned()),
            reason,
        })
}

/// Creates the key file with a new random key, or reads the one another
/// process created first. The key is written to a temporary file created
/// with mode 0600, synced, then hard-linked into place, so the key file never
/// exists with other bits or half written, and an existing one is never
/// replaced.
pub(super) fn create_key_file(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let key = crypto::generate_key().map_err(|e| {
        StoreError::io(
            "make a random master key for",
            path,
            std::io::Error::other(e),
        )
    })?;
    let mut text = Zeroizing::new([b'\n'; 2 * KEY_LEN + 1]);
    hex::encode_to_slice(key.as_ref(), &mut text[..2 * KEY_LEN])
        .map_err(|e| StoreError::io("encode the master key for", path, std::io::Error::other(e)))?;

    let mut suffix = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut suffix);
    let tmp = dir.join(format!(".master.key.{}.tmp", hex::encode(suffix)));
    if let Err(e) = write_new(&tmp, text.as_ref()) {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io("write the new master key file", &tmp, e));
    }
    let linked = match fs::hard_link(&tmp, path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            // A file system without hard links: create it in place, still
            // exclusively and with mode 0600 from the start.
            tracing::debug!(error = %e, "no hard link for the master key file; writing it in place");
            write_new(path, text.as_ref())
        }
        other => other,
    };
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(dir);
            tracing::info!(path = %path.display(), "created a new master key file");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process created it first: use theirs.
            read_key_file(path)?.ok_or_else(|| {
                StoreError::io(
                    "read the master key file",
                    path,
                    std::io::ErrorKind::NotFound.into(),
                )
            })
        }
        Err(e) => Err(StoreError::io("create the master key file", path, e)),
    }
}

/// Creates `path` (failing if it exists) with mode 0600, writes `bytes` and
/// syncs them.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a new directory entry durable. Best effort: not every system can
/// sync a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(path = %dir.display(), error = %e, "could not sync the data directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}
