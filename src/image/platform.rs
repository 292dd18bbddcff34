//! `--platform OS/ARCH[/VARIANT]`: which manifest of an index to pull
//! (image-spec's platform object), the machine's own by default.

/// A platform asked for, or the machine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::str::FromStr for Platform {
    type Err = String;
    fn from_str(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(format!(
                "'{text}' is not OS/ARCH[/VARIANT] (lower-case, as linux/amd64 or linux/arm64/v8)"
            ));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// linux/<this machine's architecture in image-spec's words>.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform { os: "linux".into(), architecture: architecture.into(), variant: None }
    }

    /// Whether an image (or an index entry) of `os/architecture[/variant]`
    /// is this one. A variant asked for must be the image's, but for the
    /// one an architecture implies (arm64's v8, as docker normalises it);
    /// none asked for takes any.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        match (self.variant.as_deref(), variant.filter(|v| !v.is_empty())) {
            (None, _) => true,
            (Some(wanted), Some(got)) => wanted == got,
            (Some(wanted), None) => implied_variant(architecture) == Some(wanted),
        }
    }
}

fn implied_variant(architecture: &str) -> Option<&'static str> {
    match architecture {
        "arm64" => Some("v8"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let arm: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(arm.to_string(), "linux/arm64/v8");
        assert!(arm.matches("linux", "arm64", Some("v8")));
        assert!(arm.matches("linux", "arm64", None));
        assert!(!arm.matches("linux", "arm64", Some("v9")));
        let any_arm: Platform = "linux/arm64".parse().unwrap();
        assert!(any_arm.matches("linux", "arm64", Some("v8")));
        assert!(!any_arm.matches("linux", "amd64", None));
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(!v7.matches("linux", "arm", None) && v7.matches("linux", "arm", Some("v7")));
        for bad in ["linux", "linux/", "/amd64", "linux/amd64/v1/x", "Linux/AMD64", "linux/amd 64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
        assert_eq!(Platform::host().os, "linux");
    }
}
