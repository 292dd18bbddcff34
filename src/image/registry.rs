//! A distribution-spec v2 client: manifests and blobs over HTTP(S), token
//! authentication from the registry's challenge, redirects followed by
//! hand (so that `Authorization` never reaches another host), retries with
//! backoff on 429 and 5xx.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::auth::{Challenge, parse_challenge, stored_credentials};
use super::reference::Reference;

/// What a manifest request accepts, newest first.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Manifests are small; a larger one is refused rather than read.
pub const MANIFEST_LIMIT: u64 = 4 << 20;
const REDIRECTS: usize = 5;
const ATTEMPTS: u32 = 4;
/// Where credentials are looked for, for the errors that say none were found.
const CREDENTIAL_FILES: &str = "$XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json";

pub struct Registry {
    agent: ureq::Agent,
    /// `http://127.0.0.1:5000` or `https://registry-1.docker.io`.
    base: String,
    /// The reference's registry name, for the credentials files.
    domain: String,
    repository: String,
    /// `Authorization` for this registry, once a challenge was answered.
    authorization: Option<String>,
    /// A challenge was answered and nothing has succeeded since: a second
    /// 401 means the credentials are refused. (A 401 after a success is an
    /// expired token, answered again.)
    tried_token: bool,
    /// Whether the answer to the last challenge carried stored credentials
    /// (`None`: no challenge yet), for the error a refusal gets.
    sent_credentials: Option<bool>,
}

/// A response whose status is 200, with its headers.
pub struct Fetched {
    pub content_type: Option<String>,
    pub body: ureq::Body,
}

impl Registry {
    pub fn new(reference: &Reference) -> Registry {
        let scheme = if reference.is_loopback() { "http" } else { "https" };
        let mut config = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("zookeeper/", env!("CARGO_PKG_VERSION")));
        if reference.is_loopback() {
            // A proxy from the environment must not see loopback traffic.
            config = config.proxy(None);
        }
        Registry {
            agent: config.build().into(),
            base: format!("{scheme}://{}", reference.registry_host()),
            domain: reference.domain.clone(),
            repository: reference.repository.clone(),
            authorization: None,
            tried_token: false,
            sent_credentials: None,
        }
    }

    /// GET a manifest by tag or digest; 404 is `Ok(None)`.
    pub fn manifest(&mut self, reference: &str) -> Result<Option<(Option<String>, Vec<u8>)>> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let accept = MANIFEST_TYPES.join(", ");
        let Some(fetched) = self.get(&url, Some(&accept))? else { return Ok(None) };
        let mut body = fetched.body;
        let bytes = body
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .with_context(|| format!("reading the manifest {reference}"))?;
        Ok(Some((fetched.content_type, bytes)))
    }

    /// GET a blob; 404 is an error naming it.
    pub fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + Send>> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repository);
        match self.get(&url, None)? {
            Some(fetched) => Ok(Box::new(fetched.body.into_reader())),
            None => bail!("the registry has no blob {digest}"),
        }
    }

    /// A GET with authentication, redirects and retries. `Ok(None)`: 404.
    fn get(&mut self, url: &str, accept: Option<&str>) -> Result<Option<Fetched>> {
        let mut url = url.to_string();
        let mut redirects = 0;
        let mut attempt = 0;
        loop {
            // Authorization goes to the registry's own host only.
            let same_host = origin(&url) == origin(&self.base);
            let mut request = self.agent.get(&url);
            if let Some(accept) = accept {
                request = request.header("Accept", accept);
            }
            if same_host && let Some(authorization) = &self.authorization {
                request = request.header("Authorization", authorization);
            }
            let response = request.call().map_err(|err| transport_error(&url, err))?;
            let status = response.status().as_u16();
            match status {
                200 => {
                    self.tried_token = false;
                    let content_type = header(&response, "content-type");
                    return Ok(Some(Fetched { content_type, body: response.into_body() }));
                }
                404 => return Ok(None),
                301 | 302 | 303 | 307 | 308 => {
                    redirects += 1;
                    if redirects > REDIRECTS {
                        bail!("{url}: more than {REDIRECTS} redirects");
                    }
                    let location = header(&response, "location")
                        .with_context(|| format!("{url}: a redirect ({status}) without a Location"))?;
                    url = resolve_location(&url, &location)?;
                }
                401 if same_host && !self.tried_token => {
                    let challenge =
                        header(&response, "www-authenticate")
                            .and_then(|h| parse_challenge(&h))
                            .with_context(|| format!("{url}: 401 without a challenge zookeeper knows"))?;
                    self.tried_token = true;
                    self.answer(challenge)?;
                }
                401 | 403 => bail!("{}", self.denied(status)),
                429 | 500..=599 if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    let wait = header(&response, "retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map_or(Duration::from_millis(250 << attempt), Duration::from_secs)
                        .min(Duration::from_secs(10));
                    std::thread::sleep(wait);
                }
                _ => bail!("{url}: the registry answered {status}"),
            }
        }
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// Why a 401 or 403 came, as far as zookeeper can tell.
    fn denied(&self, status: u16) -> String {
        match self.sent_credentials {
            Some(true) => format!(
                "{}: access denied ({status}) with the credentials stored for {}; the image may not exist, or they may not allow pulling it",
                self.describe(),
                self.domain
            ),
            _ => format!(
                "{}: access denied ({status}); the image may not exist, or need credentials, and none are stored for {} ({})",
                self.describe(),
                self.domain,
                CREDENTIAL_FILES
            ),
        }
    }

    /// Answers a challenge: Basic with stored credentials, or a token from
    /// the realm (anonymous or with them).
    fn answer(&mut self, challenge: Challenge) -> Result<()> {
        let credentials = stored_credentials(&self.domain);
        self.sent_credentials = Some(credentials.is_some());
        match challenge {
            Challenge::Basic => {
                let auth = credentials.with_context(|| {
                    format!(
                        "{}: the registry wants credentials and none are stored for {} ({CREDENTIAL_FILES})",
                        self.describe(),
                        self.domain
                    )
                })?;
                self.authorization = Some(format!("Basic {auth}"));
            }
            Challenge::Bearer { realm, service, scope } => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let mut query = vec![("scope", scope)];
                if let Some(service) = service {
                    query.push(("service", service));
                }
                if !realm.starts_with("https://") && !realm.starts_with("http://") {
                    bail!("{}: the token realm {realm} is not an http(s) URL", self.describe());
                }
                let mut request = self.agent.get(&realm);
                for (key, value) in &query {
                    request = request.query(*key, value);
                }
                if let Some(auth) = &credentials {
                    request = request.header("Authorization", &format!("Basic {auth}"));
                }
                let response = request.call().map_err(|err| transport_error(&realm, err))?;
                let status = response.status().as_u16();
                match (status, &credentials) {
                    (200, _) => {}
                    (401 | 403, Some(_)) => bail!(
                        "{}: the token service {realm} refused the credentials stored for {} ({status})",
                        self.describe(),
                        self.domain
                    ),
                    (401 | 403, None) => bail!(
                        "{}: the token service {realm} wants credentials ({status}), and none are stored for {} ({CREDENTIAL_FILES})",
                        self.describe(),
                        self.domain
                    ),
                    _ => bail!("{}: the token service {realm} answered {status}", self.describe()),
                }
                let body = response
                    .into_body()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_vec()
                    .with_context(|| format!("reading the token from {realm}"))?;
                let value: serde_json::Value = serde_json::from_slice(&body)
                    .with_context(|| format!("the token from {realm} is not JSON"))?;
                let token = ["token", "access_token"]
                    .iter()
                    .find_map(|key| value.get(key)?.as_str().filter(|t| !t.is_empty()))
                    .with_context(|| format!("the answer from {realm} holds no token"))?;
                self.authorization = Some(format!("Bearer {token}"));
            }
        }
        Ok(())
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response.headers().get(name)?.to_str().ok().map(str::to_string)
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
}

/// A Location, absolute or relative to `base`.
fn resolve_location(base: &str, location: &str) -> Result<String> {
    if location.starts_with("https://") || location.starts_with("http://") {
        return Ok(location.to_string());
    }
    if let Some(path) = location.strip_prefix('/') {
        if path.starts_with('/') {
            // Scheme-relative: //host/path.
            let scheme = base.split_once("://").map_or("https", |(s, _)| s);
            return Ok(format!("{scheme}:{location}"));
        }
        return Ok(format!("{}/{path}", origin(base)));
    }
    bail!("{base}: a redirect to '{location}', which zookeeper does not follow")
}

fn transport_error(url: &str, err: ureq::Error) -> anyhow::Error {
    let origin = origin(url);
    match err {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            anyhow::anyhow!("cannot reach the registry {origin}: connection refused")
        }
        ureq::Error::Io(io) => anyhow::anyhow!("cannot reach {origin}: {io}"),
        ureq::Error::Timeout(what) => anyhow::anyhow!("{origin}: timed out ({what})"),
        ureq::Error::HostNotFound => anyhow::anyhow!("cannot reach {origin}: host not found"),
        other => anyhow::anyhow!("{origin}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_locations() {
        assert_eq!(origin("http://127.0.0.1:5000/v2/x"), "http://127.0.0.1:5000");
        assert_eq!(origin("HTTPS://Reg.IO"), "https://reg.io");
        assert_eq!(resolve_location("http://a:1/v2/x", "/b/c").unwrap(), "http://a:1/b/c");
        assert_eq!(resolve_location("http://a:1/v2/x", "//cdn/b").unwrap(), "http://cdn/b");
        assert_eq!(resolve_location("http://a:1/v2/x", "https://cdn/b").unwrap(), "https://cdn/b");
        assert!(resolve_location("http://a:1/v2/x", "rel").is_err());
    }
}
