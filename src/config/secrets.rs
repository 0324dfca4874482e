//! The API key: where it comes from, and a type that cannot print it.
//!
//! `ApiKey` has no `Display`, and its `Debug` prints a placeholder, so a key cannot leak through
//! a log line, an error or a panic message by accident; the only way to the text is the
//! explicitly named `expose`, used when the request header is built.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::errors::{Error, Result};

pub const KEY_ENV: &str = "STEPONEAI_API_KEY";
pub const SECRETS_FIELD: &str = "steponeai_api_key";

#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key's text, for the `X-API-Key` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The key from `STEPONEAI_API_KEY` (its value is `from_env`), else from
/// `~/.clawd/secrets.json` under `home`, checked to be something an HTTP header can carry (a
/// pasted key with a line break would otherwise fail at the first call).
pub fn load(from_env: Option<String>, home: Option<PathBuf>) -> Result<ApiKey> {
    let key = find(from_env, home)?;
    if reqwest::header::HeaderValue::from_str(key.expose()).is_err() {
        return Err(Error::BadApiKey);
    }
    Ok(key)
}

fn find(from_env: Option<String>, home: Option<PathBuf>) -> Result<ApiKey> {
    if let Some(key) = from_env
        && !key.trim().is_empty()
    {
        return Ok(ApiKey(key.trim().to_string()));
    }
    let Some(path) = home.map(|home| home.join(".clawd").join("secrets.json")) else {
        return Err(Error::NoApiKey { simulate: true });
    };
    if !path.exists() {
        return Err(Error::NoApiKey { simulate: true });
    }
    from_file(&path)
}

fn from_file(path: &Path) -> Result<ApiKey> {
    let bad = |message: String| Error::SecretsFile {
        path: path.to_path_buf(),
        message,
    };
    let bytes = crate::input::files::read_small(path, 1 << 20, "secrets file")
        .map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("it is not UTF-8 text".into()))?;
    warn_if_readable_by_others(path);
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| bad("it is not valid JSON".into()))?;
    match value
        .get(SECRETS_FIELD)
        .and_then(|v| v.as_str())
        .map(str::trim)
    {
        Some(key) if !key.is_empty() => Ok(ApiKey(key.to_string())),
        _ => Err(bad(format!("it has no `{SECRETS_FIELD}` string"))),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "{} can be read by other users of this machine; protect it with: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::ApiKey;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("aicall_supersecret");
        assert!(!format!("{key:?}").contains("supersecret"));
        assert_eq!(key.expose(), "aicall_supersecret");
    }
}
