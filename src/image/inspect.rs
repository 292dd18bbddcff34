//! `--image-inspect REF`: what an image in the store is and what it asks
//! for, a `key: value` line each, from its manifest and config (the store
//! only: nothing is pulled). ExposedPorts are listed here, and only here:
//! zookeeper never publishes a port without `--publish` (docs/images.md).

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::reference::Reference;
use super::store::{Access, Store};
use super::{CONFIG_LIMIT, Manifest, registry, short, size, store_root};

pub fn inspect(reference: &str, store: Option<&Path>) -> Result<String> {
    let reference = Reference::parse(reference)?;
    let store = Store::open(&store_root(store)?, Access::Read)?;
    let name = reference.to_string();
    let descriptor = store
        .lookup(&name)?
        .with_context(|| format!("no image {name} in the store (--image-pull pulls it)"))?;
    let manifest: Manifest =
        serde_json::from_slice(&store.read_blob(&descriptor.digest, registry::MANIFEST_LIMIT)?)
            .context("the stored manifest")?;
    let Some(config_descriptor) = &manifest.config else { bail!("the stored manifest has no config") };
    let config: Value = serde_json::from_slice(&store.read_blob(&config_descriptor.digest, CONFIG_LIMIT)?)
        .context("the stored image config")?;
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let run = config.get("config").cloned().unwrap_or(Value::Null);
    let list = |key: &str| match run.get(key) {
        Some(Value::Array(items)) if !items.is_empty() => Value::Array(items.clone()).to_string(),
        _ => "-".to_string(),
    };
    // ExposedPorts, Volumes: objects whose keys are what counts.
    let keys = |key: &str| match run.get(key) {
        Some(Value::Object(map)) if !map.is_empty() => map.keys().cloned().collect::<Vec<_>>().join(", "),
        _ => "-".to_string(),
    };
    let or_dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
    let variant = text(&config, "variant");
    let mut lines = vec![
        ("reference", name.clone()),
        ("manifest", descriptor.digest.clone()),
        ("image id", short(&config_descriptor.digest).to_string()),
        (
            "platform",
            format!(
                "{}/{}{}",
                text(&config, "os"),
                text(&config, "architecture"),
                if variant.is_empty() { String::new() } else { format!("/{variant}") }
            ),
        ),
        ("created", or_dash(text(&config, "created"))),
        (
            "layers",
            format!(
                "{} ({} compressed)",
                manifest.layers.len(),
                size(manifest.layers.iter().map(|l| l.size).sum::<u64>())
            ),
        ),
        ("entrypoint", list("Entrypoint")),
        ("cmd", list("Cmd")),
        ("working dir", or_dash(text(&run, "WorkingDir"))),
        ("user", or_dash(text(&run, "User"))),
        ("stop signal", or_dash(text(&run, "StopSignal"))),
        ("exposed ports", keys("ExposedPorts")),
        ("volumes", keys("Volumes")),
    ];
    if let Some(Value::Array(env)) = run.get("Env") {
        for entry in env.iter().filter_map(Value::as_str) {
            lines.push(("env", entry.to_string()));
        }
    }
    if let Some(Value::Object(labels)) = run.get("Labels") {
        for (key, value) in labels {
            lines.push(("label", format!("{key}={}", value.as_str().unwrap_or(""))));
        }
    }
    let mut out = String::new();
    for (key, value) in lines {
        // A config's strings may hold anything: one line per entry.
        let value: String = value.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
        out.push_str(&format!("{:<16}{value}\n", format!("{key}:")));
    }
    Ok(out)
}
