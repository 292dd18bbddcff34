//! Registry authentication: the `WWW-Authenticate` challenge (distribution's
//! token spec: `Bearer realm=…,service=…,scope=…`, or `Basic`), and the
//! credentials docker and podman store: `auths.<registry>.auth` (base64 of
//! `user:password`) in `$XDG_RUNTIME_DIR/containers/auth.json`, then in
//! `~/.docker/config.json`. Credential helpers are not run.

use std::io::Read as _;
use std::path::PathBuf;

/// A parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
    Basic,
}

/// Parses one `WWW-Authenticate` value; `None` for a scheme not known.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |key: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.clone());
    Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
}

/// `key=value` or `key="quoted, value"`, comma-separated (RFC 7235 auth-params).
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value =
                std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        params.push((key.trim().to_string(), value));
    }
    params
}

/// The stored `auth` value (base64 `user:password`) for `registry` (as the
/// reference names it: `docker.io`, `127.0.0.1:5000`), or `None`.
pub fn stored_credentials(registry: &str) -> Option<String> {
    let mut files = Vec::new();
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(dir).join("containers/auth.json"));
    }
    if let Some(home) = super::store::home_dir() {
        files.push(home.join(".docker/config.json"));
    }
    let mut keys = vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")];
    if registry == "docker.io" {
        keys.extend([
            "https://index.docker.io/v1/".to_string(),
            "index.docker.io".to_string(),
            "registry-1.docker.io".to_string(),
        ]);
    }
    files.iter().find_map(|file| {
        let mut text = String::new();
        // A credentials file is small; a larger one is not read.
        std::fs::File::open(file).ok()?.take(1 << 20).read_to_string(&mut text).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        let auths = value.get("auths")?.as_object()?;
        keys.iter().find_map(|key| {
            let auth = auths.get(key)?.get("auth")?.as_str()?;
            (!auth.is_empty()).then(|| auth.to_string())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="http://127.0.0.1:5001/token",service="zk-registry",scope="repository:zk/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:5001/token".into(),
                service: Some("zk-registry".into()),
                scope: Some("repository:zk/busybox:pull".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm="https://auth.docker.io/token", service="registry.docker.io""#),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: None
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }
}
