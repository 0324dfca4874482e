//! The performance benchmark: every row of the campaign-scale targets, measured on the release
//! binary and printed as a table (the README's "Performance" section is its last output).
//!
//! It drives the real `stepcall` executable, as a user would, so process start-up, file reading
//! and the fsyncs are all in the figures. Peak memory is each child's own `ru_maxrss`, read with
//! `wait4`. Lists of 10k, 100k and 1M rows are generated in a temporary directory, so the
//! figures show how time and memory grow with the list. Nothing leaves the machine: calls go to
//! `stepcall sim` on 127.0.0.1.
//!
//!     cargo bench --bench perf                      # everything (about 5 minutes)
//!     STEPCALL_BENCH_SIZES=10000 cargo bench --bench perf -- scale   # one part, one size
//!
//! Parts: `scale` (validate, import, sqlite3, resume, export), `dial`, `rate`, `polls`,
//! `hostile` (inputs made to hang stepcall or fill its memory: each must be answered within 5 s
//! and 500 MB).

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    let sizes: Vec<u64> = std::env::var("STEPCALL_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("STEPCALL_BENCH_SIZES: numbers, comma-separated")
        })
        .collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut report = String::new();
    if wants("scale") {
        let _ = writeln!(
            report,
            "| rows | validate | import (`run --max-calls 0`) | sqlite3 `.import` | resume, 90% done: first call | export |"
        );
        let _ = writeln!(report, "| ---: | ---: | ---: | ---: | ---: | ---: |");
        for &n in &sizes {
            let row = scale(&dir.path().join(format!("n{n}")), n);
            let _ = writeln!(report, "{row}");
            eprintln!("{row}");
        }
        report.push('\n');
    }
    if wants("dial") {
        let line = dial_pipeline(&dir.path().join("dial"), 20_000);
        eprintln!("{line}");
        let _ = writeln!(report, "{line}");
    }
    if wants("rate") {
        let line = rate_precision(&dir.path().join("rate"));
        eprintln!("{line}");
        let _ = writeln!(report, "{line}");
    }
    if wants("polls") {
        let line = polls_per_call(&dir.path().join("polls"));
        eprintln!("{line}");
        let _ = writeln!(report, "{line}");
    }
    if wants("hostile") {
        let _ = writeln!(report, "\n| hostile input | `validate` | exit |");
        let _ = writeln!(report, "| --- | ---: | ---: |");
        for row in hostile(&dir.path().join("hostile")) {
            eprintln!("{row}");
            let _ = writeln!(report, "{row}");
        }
    }
    println!("\n{report}");
}

/// Wall time and peak resident memory of one finished child process.
struct Measured {
    secs: f64,
    peak_mb: f64,
    code: i32,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} s, {:.0} MB", self.secs, self.peak_mb)
    }
}

/// The test harness's simulator process and command builder, shared rather than copied.
#[allow(dead_code)]
#[path = "../tests/harness.rs"]
mod harness;

use harness::Sim;

fn stepcall() -> Command {
    let mut cmd = harness::bin();
    cmd.env("STEPONEAI_API_KEY", harness::KEY);
    cmd
}

/// Runs `cmd` to the end, with its output discarded, and measures it.
// The child is reaped by `wait4`, which also reports its peak memory.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> Measured {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a command");
    let (code, peak_kb) = wait4(&child);
    Measured {
        secs: started.elapsed().as_secs_f64(),
        peak_mb: peak_kb as f64 / 1024.0,
        code,
    }
}

/// The exit code and peak RSS (KiB) of `child`, from the kernel's own accounting.
fn wait4(child: &Child) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: plain syscall on our own child's pid, with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss)
}

fn must(m: Measured, what: &str) -> Measured {
    assert_eq!(m.code, 0, "{what} failed (exit {})", m.code);
    m
}

/// A list of `n` contacts with five columns, Chinese text, unique mobile numbers in no
/// particular order (as a real list's are: the phone index takes them at random places).
fn write_list(path: &Path, n: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "name,phone,date,time,doctor").unwrap();
    let doctors = ["王医生", "李医生", "张医生", "陈医生"];
    for i in 0..n {
        writeln!(
            out,
            "客户{i},13{:09},2026-12-{:02},{}:30,{}",
            // 7919 is prime to 10⁹, so the numbers stay unique.
            (i * 7919) % 1_000_000_000,
            1 + i % 28,
            9 + i % 8,
            doctors[(i % 4) as usize]
        )
        .unwrap();
    }
}

fn write_campaign(dir: &Path, limits: &str, api: &str) -> PathBuf {
    let path = dir.join("campaign.yaml");
    std::fs::write(
        &path,
        format!(
            "name: bench\ncontacts: list.csv\nphone_column: phone\n\
             user_requirement: \"请致电{{{{ name }}}}，提醒其{{{{ date }}}} {{{{ time }}}}与{{{{ doctor }}}}的预约，语气礼貌简洁。\"\n\
             hours: always\nlimits: {limits}\napi: {api}\n"
        ),
    )
    .unwrap();
    path
}

/// validate, import, sqlite3's .import, resume and export of an `n`-row list.
fn scale(dir: &Path, n: u64) -> String {
    std::fs::create_dir_all(dir).unwrap();
    write_list(&dir.join("list.csv"), n);
    let campaign = write_campaign(
        dir,
        "{ calls_per_second: 1000, concurrency: 4 }",
        "{ timeout: 30s }",
    );
    let validate = must(
        measure(stepcall().arg("validate").arg(&campaign)),
        "validate",
    );
    let import = must(
        measure(
            stepcall()
                .args(["run", "--simulate", "--max-calls", "0"])
                .arg(&campaign),
        ),
        "import",
    );
    let sqlite = measure(
        Command::new("sqlite3")
            .arg(dir.join("sqlite3.db"))
            .args([".mode csv", ".import list.csv contacts"])
            .current_dir(dir),
    );
    let sqlite = if sqlite.code == 0 {
        format!("{:.2} s ({:.1}×)", sqlite.secs, import.secs / sqlite.secs)
    } else {
        "sqlite3 not installed".into()
    };
    let db = dir.join("campaign.db");
    finish_calls(&db, n * 9 / 10);
    let resume = must(
        measure(
            stepcall()
                .args(["run", "--simulate", "--no-wait", "--max-calls", "1"])
                .arg(&campaign),
        ),
        "resume",
    );
    finish_calls(&db, n);
    let export = must(
        measure(
            stepcall()
                .arg("export")
                .arg(&campaign)
                .arg("-o")
                .arg(dir.join("out.csv")),
        ),
        "export",
    );
    let _ = std::fs::remove_dir_all(dir);
    format!(
        "| {n} | {validate} | {import} | {sqlite} | {:.2} s | {export} |",
        resume.secs
    )
}

/// Gives the first `upto` contacts a finished call with a transcript, as if they were done.
fn finish_calls(db: &Path, upto: u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!(
        "BEGIN;
         INSERT INTO attempts (contact_id, number, started_at, started_unix, request, idempotency_key,
                               outcome, call_id, status_raw, duration_seconds, cost, transcript,
                               polls, updated_at, finished_unix)
         SELECT id, 1, imported_at, unixepoch(), '{{}}', 'bench-' || id, 'answered',
                'call-' || id, 'completed', 42, 0.35,
                'assistant: 您好，这里是阳光牙科，提醒您明天上午的预约。\nuser: 好的，我会准时到，谢谢。',
                2, imported_at, unixepoch()
         FROM contacts WHERE id <= {upto} AND state = 'pending';
         UPDATE contacts SET state = 'answered' WHERE id <= {upto} AND state = 'pending';
         COMMIT;"
    ))
    .unwrap();
}

/// Every call `sim` accepted went to a different number.
fn assert_nobody_twice(sim: &Sim) {
    let twice: Vec<_> = sim
        .dial_counts()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "dialled more than once: {twice:?}");
}

fn live_run(campaign: &Path, sim: &Sim, extra: &[&str]) -> Measured {
    must(
        measure(
            stepcall()
                .arg("run")
                .arg(campaign)
                .args(["--base-url", &sim.url])
                .args(extra),
        ),
        "run",
    )
}

/// Calls per second with the quota out of the way: 64 in flight, a durable intent per call.
fn dial_pipeline(dir: &Path, n: u64) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let sim = Sim::start(&["--latency", "5ms"]);
    write_list(&dir.join("list.csv"), n);
    let campaign = write_campaign(
        dir,
        "{ calls_per_second: 100000, concurrency: 64 }",
        "{ timeout: 30s }",
    );
    let run = live_run(&campaign, &sim, &["--no-wait"]);
    assert_nobody_twice(&sim);
    let arrivals = sim.arrivals();
    assert_eq!(arrivals.len() as u64, n, "every contact dialled once");
    let span = arrivals.last().copied().unwrap_or(0.0);
    format!(
        "dial pipeline: {n} calls in {span:.2} s = {:.0} calls/s (concurrency 64, simulator latency 5 ms, whole run {run})",
        n as f64 / span
    )
}

/// 20 calls/s for a minute: how many calls, and the most in any 1 s window.
fn rate_precision(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let sim = Sim::start(&["--latency", "5ms"]);
    write_list(&dir.join("list.csv"), 1_230);
    let campaign = write_campaign(
        dir,
        "{ calls_per_second: 20, concurrency: 4 }",
        "{ timeout: 30s }",
    );
    live_run(&campaign, &sim, &["--no-wait"]);
    assert_nobody_twice(&sim);
    let t = sim.arrivals();
    let in_minute = t.iter().filter(|&&x| x < 60.0).count();
    let mut most = 0;
    let mut j = 0;
    for i in 0..t.len() {
        while t[j] <= t[i] - 1.0 {
            j += 1;
        }
        most = most.max(i - j + 1);
    }
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    // How close the quota came to being broken: 21 calls must span more than a second.
    assert!(t.len() > 21, "the rate part made only {} calls", t.len());
    let tightest = t
        .windows(21)
        .map(|w| w[20] - w[0])
        .fold(f64::INFINITY, f64::min);
    format!(
        "rate precision at calls_per_second 20: {in_minute} calls in the first 60 s, at most {most} in any 1 s window (21 calls in a row spanned at least {:.2} ms), closest two calls {:.1} ms apart",
        tightest * 1000.0,
        min_gap * 1000.0
    )
}

/// Polls per finished call with records ready 5–60 s after the call, at 1/10 of real time
/// (records 0.5–6 s, first poll after 0.5 s): the count does not depend on the scale.
fn polls_per_call(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let sim = Sim::start(&[
        "--latency",
        "5ms",
        "--record-delay",
        "500ms",
        "--record-delay-max",
        "6s",
    ]);
    write_list(&dir.join("list.csv"), 400);
    let campaign = write_campaign(
        dir,
        "{ calls_per_second: 100, concurrency: 16 }",
        "{ timeout: 30s, poll_interval: 500ms }",
    );
    live_run(&campaign, &sim, &[]);
    let conn = rusqlite::Connection::open(dir.join("campaign.db")).unwrap();
    let (calls, polls): (i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(polls) FROM attempts WHERE status_raw IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    format!(
        "polls per finished call (records ready 5–60 s, scaled 1/10): {:.2} ({polls} polls for {calls} calls)",
        polls as f64 / calls as f64
    )
}

/// `validate` on each input of issue 12's list of hostile inputs: its time, peak memory and exit
/// code (2, with a message, or 4 where only one row is bad).
fn hostile(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let campaign = |name: &str, contacts: &str, template: &str| {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!("name: hostile\ncontacts: {contacts}\nuser_requirement: \"{template}\"\nhours: always\n"),
        )
        .unwrap();
        path
    };
    std::fs::write(dir.join("ok.csv"), "name,phone\n王芳,13800138000\n").unwrap();
    let many: String = (0..1000)
        .map(|i| format!("客户{i},1380013{i:04}\n"))
        .collect();
    std::fs::write(dir.join("many.csv"), format!("name,phone\n{many}")).unwrap();
    let mut wide = String::from("name,phone");
    for i in 0..100_000 {
        let _ = write!(wide, ",c{i}");
    }
    wide.push_str("\n王芳,13800138000\n");
    std::fs::write(dir.join("wide.csv"), wide).unwrap();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("breaks.csv")).unwrap());
        f.write_all("name,phone\n王芳,13800138000\n\"".as_bytes())
            .unwrap();
        let chunk = vec![b'\n'; 1 << 20];
        for _ in 0..200 {
            f.write_all(&chunk).unwrap();
        }
    }
    let rows = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c><c r="B1" t="inlineStr"><is><t>phone</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>王芳</t></is></c><c r="B2"><v>13800138000</v></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#;
    harness::write_xlsx(
        &dir.join("far.xlsx"),
        "Sheet1",
        rows,
        &[("dimension", "A1:XFD1048576")],
    );
    harness::write_xlsx(
        &dir.join("bomb.xlsx"),
        "Sheet1",
        rows,
        &[("xl/media/padding.bin", &"x".repeat(1 << 16))],
    );
    harness::declare_size(
        &dir.join("bomb.xlsx"),
        "xl/media/padding.bin",
        3_000_000_000,
    );
    let fifo = dir.join("list.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let nested = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}{{ name }}";
    let cases = [
        (
            "a loop inside a loop in the template",
            campaign("nested", "ok.csv", nested),
        ),
        (
            "requirements of 15 million characters, 1,000 rows",
            campaign("long", "many.csv", "{{ name * 5000000 }}"),
        ),
        (
            "`/dev/zero` as the list",
            campaign("zero", "/dev/zero", "{{ name }}"),
        ),
        (
            "a FIFO as the list",
            campaign("fifo", "list.fifo", "{{ name }}"),
        ),
        (
            "a header of 100,002 columns",
            campaign("wide", "wide.csv", "{{ name }}"),
        ),
        (
            "a 200 MB cell of line breaks",
            campaign("breaks", "breaks.csv", "{{ name }}"),
        ),
        (
            "an .xlsx with one cell at XFD1048576",
            campaign("far", "far.xlsx", "{{ name }}"),
        ),
        (
            "an .xlsx declaring 3 GB unpacked",
            campaign("bomb", "bomb.xlsx", "{{ name }}"),
        ),
    ];
    cases
        .into_iter()
        .map(|(what, campaign)| {
            let m = measure(stepcall().arg("validate").arg(&campaign));
            assert!(m.code == 2 || m.code == 4, "{what}: exit {}", m.code);
            format!("| {what} | {m} | {} |", m.code)
        })
        .collect()
}
