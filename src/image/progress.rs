//! What a pull says on stderr: one line per layer when it is done
//! (`zookeeper: layer 1/2 779c1615af5f: 1.0 MB fetched, unpacked`), and on
//! a terminal, while a layer comes, a progress bar of its own (indicatif):
//! bytes, rate and time left, then "unpacking" once the blob is whole. The
//! bar is cleared and the layer's line printed in its place, so a terminal
//! ends with the same lines a log gets.
//!
//! No bar is drawn by a thread (no steady tick): zookeeper forks the layer
//! helper, and a fork must not happen while another thread holds a lock.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    terminal: bool,
    /// The bar of the layer coming now, and its label.
    bar: Option<(String, ProgressBar)>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress { terminal: std::io::stderr().is_terminal(), bar: None }
    }

    /// `done` of `total` bytes of the layer `label` are in.
    pub fn update(&mut self, label: &str, done: u64, total: u64) {
        if !self.terminal {
            return;
        }
        if self.bar.as_ref().is_none_or(|(current, _)| current != label) {
            self.clear();
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(style());
            bar.set_prefix(label.to_string());
            self.bar = Some((label.to_string(), bar));
        }
        if let Some((_, bar)) = &self.bar {
            bar.set_position(done);
            if done >= total {
                bar.set_message("unpacking");
                bar.tick();
            }
        }
    }

    /// The layer `label` is done: its bar goes, its line stays.
    pub fn line(&mut self, label: &str, text: &str) {
        self.clear();
        let _ = writeln!(std::io::stderr(), "zookeeper: {label}: {text}");
    }

    fn clear(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    /// A failed pull leaves no half-drawn bar before its error.
    fn drop(&mut self) {
        self.clear();
    }
}

const TEMPLATE: &str =
    "zookeeper: {prefix}: [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta} {msg}";

fn style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        // A constant, which the unit test below parses.
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_template_parses() {
        assert!(indicatif::ProgressStyle::with_template(super::TEMPLATE).is_ok());
    }
}
