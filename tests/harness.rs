//! A small harness: a temp workspace with a campaign and a contact list, a simulator process
//! with a journal, helpers to read what a run left behind, and `Test` (in `builder`), the one
//! way a test runs stepcall.

// A path relative to this file, so that the benchmark, which includes this file by its path,
// finds it too.
#[path = "harness/builder.rs"]
mod builder;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

// The benchmark includes this file and uses none of them.
#[allow(unused_imports)]
pub use builder::{Ran, Running, Test, WATCHDOG};

pub const KEY: &str = "aicall_test_key_0123456789";

/// `cmd` without the variables of the user's environment that would change what stepcall does.
fn clean(mut cmd: Command) -> Command {
    cmd.env_remove("STEPONEAI_BASE_URL")
        .env_remove("STEPONEAI_API_KEY")
        .env_remove("STEPCALL_NOW")
        .env_remove("RUST_LOG");
    cmd
}

/// The stepcall binary, with `clean`'s environment: the simulator's, and the benchmark's.
pub fn bin() -> Command {
    clean(Command::new(env!("CARGO_BIN_EXE_stepcall")))
}

/// A simulator process on a free loopback port, killed when dropped.
pub struct Sim {
    child: Child,
    pub url: String,
    pub journal: PathBuf,
    faults: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sim {
    pub fn start(extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.jsonl");
        let faults = dir.path().join("faults.jsonl");
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
            .arg("--faults")
            .arg(&faults)
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
            faults,
            _dir: dir,
        }
    }

    /// Every call the simulator accepted, in order.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        json_lines(&std::fs::read_to_string(&self.journal).unwrap_or_default())
    }

    /// Every fault the simulator injected (path, status, retry_after), in order.
    pub fn faults(&self) -> Vec<serde_json::Value> {
        json_lines(&std::fs::read_to_string(&self.faults).unwrap_or_default())
    }

    /// When each accepted call arrived at the simulator, sorted. The simulator stamps a call
    /// with the machine's real-time clock (it runs without `STEPCALL_NOW`, see `clean`) as its
    /// handler starts, so each time is no earlier than the moment the call was sent, and can be
    /// compared with a `SystemTime` the test reads.
    pub fn received_at(&self) -> Vec<jiff::Timestamp> {
        let mut times: Vec<jiff::Timestamp> = self
            .journal()
            .iter()
            .map(|e| e["received_at"].as_str().unwrap().parse().unwrap())
            .collect();
        times.sort();
        times
    }

    /// `received_at`, in seconds after the first (the benchmark's measure of pace).
    #[allow(dead_code)]
    pub fn arrivals(&self) -> Vec<f64> {
        let times = self.received_at();
        let first = times.first().map_or(0, |t| t.as_nanosecond());
        times
            .iter()
            .map(|t| (t.as_nanosecond() - first) as f64 / 1e9)
            .collect()
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

/// A campaign in a temp folder, shared by its clones (a `Test` holds one).
#[derive(Clone)]
pub struct Workspace {
    pub dir: Arc<tempfile::TempDir>,
}

/// The `api:` and `limits:` of `Workspace::campaign`. The request timeout bounds hangs only: a
/// call on loopback that a loaded machine held this long would be uncertain, not answered.
pub const API: &str = "{ timeout: 60s, poll_interval: 50ms }";
pub const LIMITS: &str = "{ calls_per_second: 200, concurrency: 4 }";

pub const TEMPLATE: &str = "Call {{ name }} to confirm the visit on {{ date }}.";

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: Arc::new(tempfile::tempdir().unwrap()),
        }
    }

    /// A stepcall command in this workspace.
    pub fn test(&self) -> Test {
        Test::within(self)
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
        self.campaign_with(API, LIMITS, extra)
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

    /// The export as one map per contact.
    pub fn export(&self, campaign: &Path) -> Vec<HashMap<String, String>> {
        let out = self
            .test()
            .arg("export")
            .arg(campaign)
            .stdout_any()
            .status(0);
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

/// `stepcall run <campaign>` in `ws` against the provider at `url` with `key`, as a closure that
/// can be handed to another thread and called again (each call one run, the way cron fires).
pub fn runner(
    ws: &Workspace,
    url: &str,
    campaign: &Path,
    key: &str,
) -> impl Fn() -> Test + Clone + Send + 'static {
    let (ws, url, campaign, key) = (
        ws.clone(),
        url.to_string(),
        campaign.to_path_buf(),
        key.to_string(),
    );
    move || ws.test().provider(&url).key(&key).arg("run").arg(&campaign)
}

/// Serves `app` on a free loopback port, in the current runtime; returns its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A provider of the test's own that is not stepcall's simulator, so its runs are real ones:
/// every call completes, after 30 s.
pub async fn real_provider() -> String {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let initiate = move || {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            serde_json::json!({"success": true, "call_ids": [format!("live-{n}")]}).to_string()
        }
    };
    let search = |body: String| async move {
        let asked: serde_json::Value = serde_json::from_str(&body).unwrap();
        serde_json::json!({"success": true, "call_id": asked["call_id"], "call_status": "completed", "duration_seconds": 30})
            .to_string()
    };
    let app = axum::Router::new()
        .route(stepcall::INITIATE_PATH, axum::routing::post(initiate))
        .route(stepcall::SEARCH_PATH, axum::routing::post(search));
    serve(app).await
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
    let journal = sim.journal();
    // An empty journal proves nothing: nobody was dialled at all.
    assert!(!journal.is_empty(), "the simulator accepted no call");
    let counts = sim.dial_counts();
    assert!(
        counts.values().all(|&n| n == 1),
        "a number was dialled twice: {counts:?}"
    );
    let by_phone = by_phone(export);
    for entry in journal {
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

/// One JSON value per line (a journal, `export --format jsonl`).
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A minimal .xlsx with one sheet of `cells` (the `<row>` elements of its `sheetData`).
/// `extra` adds parts as (name, body), and `("dimension", "A1:C9")` the sheet's declared range.
pub fn write_xlsx(path: &Path, sheet_name: &str, cells: &str, extra: &[(&str, &str)]) {
    use std::io::Write;
    let dimension = extra
        .iter()
        .find(|(name, _)| *name == "dimension")
        .map_or(String::new(), |(_, d)| format!(r#"<dimension ref="{d}"/>"#));
    let files = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_string(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_string(),
        ),
        (
            "xl/workbook.xml",
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{sheet_name}" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_string(),
        ),
        (
            "xl/worksheets/sheet1.xml",
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{dimension}<sheetData>{cells}</sheetData></worksheet>"#),
        ),
    ];
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let more = extra
        .iter()
        .filter(|(name, _)| *name != "dimension")
        .map(|(name, body)| (*name, body.to_string()));
    for (name, body) in files.into_iter().chain(more) {
        zip.start_file(name, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

/// Patches the sizes a zip declares for its entry `name` to `size`: what a zip bomb declares
/// (and, for the zip reader, the bound it holds the entry to).
pub fn declare_size(path: &Path, name: &str, size: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    let needle = name.as_bytes();
    let mut patched = 0;
    for (signature, size_at, name_at) in [
        (&[0x50u8, 0x4b, 0x03, 0x04], 22, 30), // local header
        (&[0x50, 0x4b, 0x01, 0x02], 24, 46),   // central directory
    ] {
        let mut i = 0;
        while i + name_at + needle.len() <= bytes.len() {
            if &bytes[i..i + 4] == signature
                && &bytes[i + name_at..i + name_at + needle.len()] == needle
            {
                bytes[i + size_at..i + size_at + 4].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
            i += 1;
        }
    }
    assert_eq!(patched, 2);
    std::fs::write(path, bytes).unwrap();
}
