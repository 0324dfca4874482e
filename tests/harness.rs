//! A small harness: a temp workspace with a campaign and a contact list, a simulator process
//! with a journal, and helpers to run the binary and read what it left behind.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const KEY: &str = "aicall_test_key_0123456789";

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepcall"));
    cmd.env_remove("STEPONEAI_BASE_URL")
        .env_remove("STEPONEAI_API_KEY")
        .env_remove("RUST_LOG");
    cmd
}

/// A simulator process on a free loopback port, killed when dropped.
pub struct Sim {
    child: Child,
    pub url: String,
    pub journal: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sim {
    pub fn start(extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.jsonl");
        let mut args = vec!["sim", "--addr", "127.0.0.1:0", "--key", KEY];
        for (flag, value) in [("--latency", "1ms"), ("--record-delay", "100ms")] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        let mut child = bin()
            .args(args)
            .arg("--journal")
            .arg(&journal)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the simulator prints its address")
                .unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.trim().to_string();
            }
        };
        // Keep draining stdout, so the simulator never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Sim {
            child,
            url,
            journal,
            _dir: dir,
        }
    }

    /// Every call the simulator accepted, in order.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.journal).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// When each accepted call arrived at the simulator, in seconds after the first, sorted.
    pub fn arrivals(&self) -> Vec<f64> {
        let mut times: Vec<f64> = self
            .journal()
            .iter()
            .map(|e| {
                let at: jiff::Timestamp = e["received_at"].as_str().unwrap().parse().unwrap();
                at.as_nanosecond() as f64 / 1e9
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let first = times.first().copied().unwrap_or(0.0);
        times.iter().map(|t| t - first).collect()
    }

    /// phone → how many times it was dialled.
    pub fn dial_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for entry in self.journal() {
            *counts
                .entry(entry["phone"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        counts
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A campaign in a temp folder.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

pub const TEMPLATE: &str = "Call {{ name }} to confirm the visit on {{ date }}.";

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A campaign over `contacts.csv` with fast timings and `extra` YAML lines.
    pub fn campaign(&self, extra: &str) -> PathBuf {
        self.campaign_with(
            "{ timeout: 5s, poll_interval: 50ms }",
            "{ calls_per_second: 200, concurrency: 4 }",
            extra,
        )
    }

    /// A campaign with its own `api:` and `limits:` blocks. Calls are allowed at any hour
    /// unless `extra` has its own `hours:`.
    pub fn campaign_with(&self, api: &str, limits: &str, extra: &str) -> PathBuf {
        let hours = if extra.contains("hours:") {
            ""
        } else {
            "hours: always\n"
        };
        self.write(
            "campaign.yaml",
            &format!(
                "name: test-campaign\ncontacts: contacts.csv\nuser_requirement: \"{TEMPLATE}\"\n\
                 api: {api}\nlimits: {limits}\n{hours}{extra}"
            ),
        )
    }

    /// `valid` distinct mobiles, then one invalid row and one duplicate of the first.
    pub fn contacts(&self, valid: usize) -> Vec<String> {
        let phones: Vec<String> = (0..valid).map(|i| format!("1380013{i:04}")).collect();
        let mut csv = String::from("name,phone,date\n");
        for (i, p) in phones.iter().enumerate() {
            csv.push_str(&format!("客户{i},{p},12月{}日\n", i % 28 + 1));
        }
        csv.push_str("坏号码,12345,12月1日\n");
        csv.push_str(&format!("重复,{},12月2日\n", phones[0]));
        self.write("contacts.csv", &csv);
        phones
    }

    /// `stepcall args…` with the test key, against `sim`.
    fn against(&self, sim: &Sim, args: &[&str]) -> Command {
        let mut cmd = bin();
        cmd.args(args)
            .arg("--base-url")
            .arg(&sim.url)
            .env("STEPONEAI_API_KEY", KEY)
            .env("HOME", self.dir.path());
        cmd
    }

    /// Runs `stepcall args…` with the test key, against `sim`.
    pub fn run(&self, sim: &Sim, args: &[&str]) -> Output {
        self.against(sim, args).output().unwrap()
    }

    /// Like `run`, with stepcall's clock starting at `now` (RFC 3339).
    pub fn run_at(&self, sim: &Sim, now: &str, args: &[&str]) -> Output {
        self.against(sim, args)
            .env("STEPCALL_NOW", now)
            .output()
            .unwrap()
    }

    pub fn stepcall(&self, args: &[&str]) -> Output {
        bin()
            .args(args)
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    /// The export as one map per contact.
    pub fn export(&self, campaign: &Path) -> Vec<HashMap<String, String>> {
        let out = self.stepcall(&["export", campaign.to_str().unwrap()]);
        assert!(out.status.success(), "export failed: {}", text(&out.stderr));
        let mut reader = csv::Reader::from_reader(&out.stdout[..]);
        let headers = reader.headers().unwrap().clone();
        reader
            .records()
            .map(|r| {
                headers
                    .iter()
                    .zip(r.unwrap().iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }
}

/// Export rows by their phone cell, duplicate rows left out.
pub fn by_phone(export: &[HashMap<String, String>]) -> HashMap<&str, &HashMap<String, String>> {
    export
        .iter()
        .filter(|r| r["call_state"] != "duplicate")
        .map(|r| (r["phone"].as_str(), r))
        .collect()
}

/// The promise, checked against the simulator's journal: nobody was dialled twice, and every
/// call id the provider gave is in the export unless its contact is `uncertain`.
#[track_caller]
pub fn assert_nobody_twice_and_call_ids_kept(sim: &Sim, export: &[HashMap<String, String>]) {
    let counts = sim.dial_counts();
    assert!(
        counts.values().all(|&n| n == 1),
        "a number was dialled twice: {counts:?}"
    );
    let by_phone = by_phone(export);
    for entry in sim.journal() {
        let row = by_phone[entry["phone"].as_str().unwrap()];
        if row["call_state"] != "uncertain" {
            assert_eq!(
                row["call_id"],
                entry["call_id"].as_str().unwrap(),
                "the journal's call id is kept: {row:?}"
            );
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
