//! age encryption (X25519 recipients, streaming): the public key encrypts on push, the
//! private key (needed only to get a copy back) decrypts on verify and pull.

use std::{
    io::{self, Read, Write},
    path::Path,
    str::FromStr,
};

use age::{secrecy::ExposeSecret, x25519};
use anyhow::{Context, Result};

use super::config::{names, show_path, Secrets};
use crate::{error::usage, files, paths};

/// The public key in `MHM_REMOTE_RECIPIENT`.
pub fn recipient(value: &str) -> Result<x25519::Recipient> {
    x25519::Recipient::from_str(value.trim()).map_err(|_| {
        usage(format!(
            "invalid value for {}: expected an age X25519 public key (age1...), as `mhm-sidecar remote keygen FILE` prints",
            names::RECIPIENT
        ))
    })
}

/// The private keys in the identity file; each is added to `secrets` so that no message
/// can carry it. Lines starting with `#` and blank lines are skipped (age-keygen's format).
pub fn identities(
    root: &Path,
    path: &Path,
    secrets: &mut Secrets,
) -> Result<Vec<x25519::Identity>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!("cannot read {} ({}): {e}", names::IDENTITY_FILE, show_path(root, path)))
    })?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        secrets.add(line);
        match x25519::Identity::from_str(line) {
            Ok(k) => keys.push(k),
            Err(_) => {
                return Err(usage(format!(
                    "{} ({}): line {} is not an age X25519 private key (AGE-SECRET-KEY-1...)",
                    names::IDENTITY_FILE,
                    show_path(root, path),
                    i + 1
                )))
            }
        }
    }
    if keys.is_empty() {
        return Err(usage(format!(
            "{} ({}) holds no private key",
            names::IDENTITY_FILE,
            show_path(root, path)
        )));
    }
    Ok(keys)
}

/// Wraps `out` so that what is written to it is encrypted to `to`; call
/// [`age::stream::StreamWriter::finish`] at the end.
pub fn encrypt<W: Write>(to: &x25519::Recipient, out: W) -> Result<age::stream::StreamWriter<W>> {
    let enc = age::Encryptor::with_recipients(std::iter::once(to as &dyn age::Recipient))
        .context("setting up encryption")?;
    enc.wrap_output(out).context("writing the age header")
}

/// Reads the plain bytes out of an age stream.
pub fn decrypt<'a, R: Read + 'a>(
    input: R,
    keys: &[x25519::Identity],
) -> Result<Box<dyn Read + 'a>> {
    let dec = age::Decryptor::new(input).map_err(|e| match e {
        age::DecryptError::Io(e) => anyhow::Error::new(e).context("reading the copy"),
        other => anyhow::anyhow!("the copy is not an age file this tool can read ({other})"),
    })?;
    let reader = dec.decrypt(keys.iter().map(|k| k as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => anyhow::anyhow!(
            "wrong key: the private key in {} does not open this copy (it was encrypted to another public key)",
            names::IDENTITY_FILE
        ),
        age::DecryptError::Io(e) => anyhow::Error::new(e).context("reading the copy"),
        other => anyhow::anyhow!("the copy's header is damaged or was changed ({other})"),
    })?;
    Ok(Box::new(reader))
}

/// A new key pair: the private key is written to `path` (owner-only, never over an
/// existing file, in age-keygen's format); the public key is returned. Messages name
/// `path` relative to the MHM `root` where it lies under it.
pub fn keygen(root: &Path, path: &Path, created: &str) -> Result<String> {
    let shown = || paths::show(root, path);
    let key = x25519::Identity::generate();
    let public = key.to_public().to_string();
    if files::exists(path) {
        return Err(usage(format!("{} already exists: a key file is never overwritten", shown())));
    }
    let mut out = files::Atomic::create_private(path)
        .with_context(|| format!("creating a file beside {}", shown()))?;
    let secret = key.to_string();
    let text =
        format!("# created: {created}\n# public key: {public}\n{}\n", secret.expose_secret());
    let written = out.file().write_all(text.as_bytes());
    written.with_context(|| format!("writing {}", paths::show(root, out.temp())))?;
    out.commit_new().map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            usage(format!("{} already exists: a key file is never overwritten", shown()))
        } else {
            anyhow::Error::new(e).context(format!("writing {}", shown()))
        }
    })?;
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.txt");
        let public = keygen(dir.path(), &file, "now").unwrap();
        let again = keygen(dir.path(), &file, "now").unwrap_err();
        assert_eq!(
            again.to_string(),
            "key.txt already exists: a key file is never overwritten",
            "never over an existing file, named relative to the root"
        );
        let mut secrets = Secrets::default();
        let keys = identities(dir.path(), &file, &mut secrets).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let secret_line = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1")).unwrap();
        assert_eq!(secrets.scrub(secret_line), "[redacted]");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let mut w = encrypt(&recipient(&public).unwrap(), Vec::new()).unwrap();
        w.write_all(b"hello").unwrap();
        let sealed = w.finish().unwrap();
        let mut plain = Vec::new();
        decrypt(&sealed[..], &keys).unwrap().read_to_end(&mut plain).unwrap();
        assert_eq!(plain, b"hello");
        let other = x25519::Identity::generate();
        let err = decrypt(&sealed[..], &[other]).err().unwrap();
        assert!(format!("{err:#}").contains("wrong key"), "{err:#}");
        assert!(recipient("age1nope").is_err());
    }
}
