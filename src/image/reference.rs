//! Image references as docker normalises them: `busybox` is
//! `docker.io/library/busybox:latest`; a first component with a `.` or a
//! `:`, or `localhost`, names the registry; `@sha256:…` pins a digest.

use anyhow::Result;

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// As written in references (`docker.io`, `127.0.0.1:5000`).
    pub domain: String,
    /// The repository path (`library/busybox`).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = |why: &str| anyhow::anyhow!("image reference '{text}': {why}");
        if text.is_empty() || text.len() > 512 {
            return Err(bad("empty or too long"));
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let hex =
                    digest.strip_prefix("sha256:").ok_or_else(|| bad("only sha256 digests are known"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    return Err(bad("a sha256 digest is 64 lower-case hex digits"));
                }
                (name, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // The tag follows the last ':' after the last '/' (a port is before it).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(at) => (&name[..last_slash + at], Some(name[last_slash + at + 1..].to_string())),
            None => (name, None),
        };
        if let Some(tag) = &tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(bad("a tag is up to 128 letters, digits, '_', '.' or '-'"));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        if domain.is_empty() || !domain.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)) {
            return Err(bad("the registry name is not a host[:port]"));
        }
        let path =
            if domain == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
        for component in path.split('/') {
            let ok = !component.is_empty()
                && component
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && component.as_bytes()[0].is_ascii_alphanumeric()
                && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric();
            if !ok {
                return Err(bad(
                    "a repository is lower-case letters, digits and separators ('.', '_', '-', '/')",
                ));
            }
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(Reference { domain, repository: path, tag, digest })
    }

    /// What the registry's manifest endpoint takes: the digest if pinned.
    pub fn manifest_ref(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// The host to connect to: Docker Hub's references say `docker.io`,
    /// its registry is `registry-1.docker.io`.
    pub fn registry_host(&self) -> &str {
        if self.domain == "docker.io" { "registry-1.docker.io" } else { &self.domain }
    }

    /// Loopback registries speak plain HTTP, as docker assumes.
    pub fn is_loopback(&self) -> bool {
        let host = match self.domain.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => self.domain.as_str(),
        };
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.domain, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Reference;

    fn full(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    #[test]
    fn docker_normalisation() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(full("docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("127.0.0.1:5000/zk/busybox:1"), "127.0.0.1:5000/zk/busybox:1");
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(full(&format!("busybox@{digest}")), format!("docker.io/library/busybox@{digest}"));
        assert_eq!(Reference::parse(&format!("b:1@{digest}")).unwrap().manifest_ref(), digest);
        assert_eq!(Reference::parse("busybox").unwrap().registry_host(), "registry-1.docker.io");
        assert!(Reference::parse("127.0.0.1:5000/a").unwrap().is_loopback());
        assert!(Reference::parse("localhost:80/a").unwrap().is_loopback());
        assert!(Reference::parse("[::1]:5000/a").unwrap().is_loopback());
        assert!(!Reference::parse("quay.io/a").unwrap().is_loopback());
    }

    #[test]
    fn bad_references() {
        for text in ["", "Busybox", "a//b", "a:", "a@sha256:12", "a@md5:00", "-a", "a:-x", "ho st/a"] {
            assert!(Reference::parse(text).is_err(), "{text}");
        }
    }
}
