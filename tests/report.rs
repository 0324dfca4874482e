//! The HTML report: one self-contained file that a real browser shows without errors, that
//! names each person by the list's own columns, and whose figures add up to the calls made.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{API, LIMITS, Test, Workspace, text};

/// A clinic's list: every patient sees the same doctor, 李明, so a report that names people
/// by the wrong column names 李明 every time.
const CLINIC: &str = "姓名,手机号,预约日期,预约时间,医生\n\
    张伟,13800130000,12月1日,09:30,李明\n\
    王芳,13800130001,12月1日,10:00,李明\n\
    赵敏,13800130002,12月2日,10:30,李明\n\
    陈静,13800130003,12月2日,11:00,李明\n\
    刘洋,13800130004,12月3日,14:00,李明\n\
    孙丽,13800130005,12月3日,15:00,李明\n";

const PATIENTS: [&str; 6] = ["张伟", "王芳", "赵敏", "陈静", "刘洋", "孙丽"];

/// A campaign over `list` (columns as `CLINIC`'s) with `extra` YAML lines.
fn clinic(ws: &Workspace, list: &str, extra: &str) -> PathBuf {
    ws.write("contacts.csv", list);
    ws.write(
        "campaign.yaml",
        &format!(
            "name: clinic\ncontacts: contacts.csv\nphone_column: 手机号\n\
             user_requirement: \"提醒{{{{ 姓名 }}}}：{{{{ 预约日期 }}}} {{{{ 预约时间 }}}}看{{{{ 医生 }}}}医生。\"\n\
             api: {API}\nlimits: {LIMITS}\nhours: always\n{extra}"
        ),
    )
}

/// `stepcall report` of `campaign`, with stepcall's clock at `now` if given: the HTML.
fn report(ws: &Workspace, campaign: &PathBuf, now: Option<&str>) -> String {
    let out = ws.path("report.html");
    let mut test = ws
        .test()
        .arg("report")
        .arg(campaign)
        .arg("-o")
        .arg(&out)
        .stderr(&format!("wrote {}\n", out.display()));
    if let Some(now) = now {
        test = test.now(now);
    }
    test.status(0);
    std::fs::read_to_string(&out).unwrap()
}

/// The element of `html` with id `id`, up to the end of its first `</end>`.
#[track_caller]
fn element<'a>(html: &'a str, id: &str, end: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("the report has #{id}"));
    let close = format!("</{end}>");
    let stop = html[start..].find(&close).expect("the element closes") + start;
    &html[start..stop]
}

/// The rows of the table `id`, each as the texts of its cells.
fn rows(html: &str, id: &str) -> Vec<Vec<String>> {
    let table = element(html, id, "table");
    let body = &table[table.find("<tbody>").expect("a body") + 7..];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td>")
                .skip(1)
                .map(|cell| cell[..cell.find("</td>").unwrap()].to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_report_is_self_contained_and_shows_the_campaign() {
    let ws = Workspace::new();
    let list = CLINIC.replace("孙丽", "<script>alert(1)</script>");
    let campaign = clinic(&ws, &list, "");
    // Every call fails or is uncertain: every patient is in the needs-a-person table.
    let sim = ws
        .test()
        .sim(&["--outcome", "failed", "--rate-drop", "0.3"]);
    run(sim, &campaign, &[]);
    let html = report(&ws, &campaign, None);
    for part in [
        "Key figures",
        "Funnel",
        "Outcomes by hour of day",
        "Outcomes by day",
        "Call durations",
        "Calls that need a person",
        "Call back",
        "Tags",
        "<svg",
        "@media print",
    ] {
        assert!(html.contains(part), "the report has {part}");
    }
    assert!(
        !html.contains("<script"),
        "no scripts, and names are escaped"
    );
    assert!(html.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
    assert!(!html.contains("src="), "no external resources at all");

    // A real browser, when the machine has one (`.ci/run` installs Debian's chromium and the
    // Noto CJK fonts, so the screenshot shows the Chinese names).
    let page = format!("file://{}", ws.path("report.html").display());
    let shot = ws.path("report.png");
    let Some(out) = chromium(
        &ws,
        &[
            "--window-size=1000,1400".into(),
            format!("--screenshot={}", shot.display()),
            page.clone(),
        ],
    ) else {
        eprintln!("SKIPPED: no chromium on this machine; the report's browser check did not run");
        return;
    };
    let log = text(&out.stderr);
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:?}"
    );
    let png = std::fs::read(&shot).expect("chromium wrote a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    // A blank 1000×1400 page compresses to a few KiB; charts and text do not.
    assert!(
        png.len() > 20_000,
        "the screenshot is not blank ({} bytes)",
        png.len()
    );
    // The page as the browser built it: each patient's name is the first cell of their row
    // of the needs-a-person table, and the escaped name stayed text.
    let dom = text(&chromium(&ws, &["--dump-dom".into(), page]).unwrap().stdout);
    let names: Vec<String> = rows(&dom, "needs-a-person")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let mut want: Vec<&str> = PATIENTS[..5].to_vec();
    want.push("&lt;script&gt;alert(1)&lt;/script&gt;");
    assert_eq!(names, want, "the browser shows each patient in their row");
}

/// `chromium --headless` with `args`, its stdout and stderr; None without a chromium.
fn chromium(ws: &Workspace, args: &[String]) -> Option<Output> {
    let browser = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })?;
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            ws.path("chromium-profile").display()
        ))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Both pipes are drained while it runs, so a large DOM or log never blocks it.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.unwrap().read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    // A bound on hangs only.
    let deadline = std::time::Instant::now() + crate::harness::WATCHDOG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "chromium did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    Some(out)
}

/// `stepcall run <campaign> <more>` as `test` sets it up, to a successful end.
fn run(test: Test, campaign: &PathBuf, more: &[&str]) {
    test.arg("run")
        .arg(campaign)
        .args(more)
        .stdout_any()
        .stderr_any()
        .status(0);
}

/// Runs `campaign` against a simulator whose every call ends `outcome`, at `now` if given,
/// with `more` arguments.
fn run_ending(ws: &Workspace, campaign: &PathBuf, outcome: &str, now: Option<&str>, more: &[&str]) {
    let mut test = ws.test().sim(&["--outcome", outcome]);
    if let Some(now) = now {
        test = test.now(now);
    }
    run(test, campaign, more);
}

/// The clinic campaign with `extra`, run against a simulator where every call fails (so every
/// patient needs a person), and its report.
fn every_call_failed(extra: &str) -> (Workspace, PathBuf, String) {
    let ws = Workspace::new();
    let campaign = clinic(&ws, CLINIC, extra);
    run_ending(&ws, &campaign, "failed", None, &[]);
    let html = report(&ws, &campaign, None);
    (ws, campaign, html)
}

#[test]
fn the_needs_a_person_table_names_each_patient_not_the_doctor() {
    let (_ws, _, html) = every_call_failed("");
    let table = element(&html, "needs-a-person", "table");
    assert!(
        table.contains(
            "<th>姓名</th><th>预约日期</th><th>预约时间</th><th>医生</th><th>phone</th><th>state</th>"
        ),
        "the list's columns in the list's order, the phone column as the number dialled: {table}"
    );
    let rows = rows(&html, "needs-a-person");
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, PATIENTS, "each row names its patient first");
    for (row, i) in rows.iter().zip(0..) {
        assert_eq!(row[4], format!("1380013000{i}"));
        assert_eq!((row[3].as_str(), row[5].as_str()), ("李明", "failed"));
    }
}

#[test]
fn report_columns_choose_who_the_report_names() {
    let (ws, campaign, html) = every_call_failed("report: { columns: [姓名, 预约日期] }\n");
    assert!(
        element(&html, "needs-a-person", "table")
            .contains("<tr><th>姓名</th><th>预约日期</th><th>phone</th><th>state</th>")
    );
    let rows = rows(&html, "needs-a-person");
    assert_eq!(rows[0][..3], ["张伟", "12月1日", "13800130000"]);
    assert!(!html.contains("李明"), "the doctor is not shown");

    clinic(&ws, CLINIC, "report: { columns: [姓名, 名字] }\n");
    ws.test()
        .args(["report", campaign.to_str().unwrap(), "-o", "r.html"])
        .stderr_contains("`report.columns` names `名字`, which is not a column of the list")
        .stderr_contains("姓名, 手机号, 预约日期, 预约时间, 医生")
        .status(2);
    assert!(!ws.path("r.html").exists(), "no report is written");
    // And before any call: a campaign that names a column the list lacks is refused.
    ws.test()
        .args(["validate", campaign.to_str().unwrap()])
        .stderr_contains("`report.columns` names `名字`, which is not a column of the list")
        .status(2);
}

/// The banner is the store's word: a real provider's run has none.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_run_has_no_simulated_banner() {
    let url = crate::harness::real_provider().await;
    tokio::task::spawn_blocking(move || {
        let ws = Workspace::new();
        let campaign = clinic(&ws, CLINIC, "");
        run(ws.test().provider(&url), &campaign, &[]);
        let html = report(&ws, &campaign, None);
        assert!(!html.contains("SIMULATED"), "{html}");
        assert!(html.contains("<dt>dialled</dt><dd>6</dd>"));
    })
    .await
    .unwrap();
}

#[test]
fn a_simulated_run_is_marked_on_top_of_its_report() {
    let ws = Workspace::new();
    let campaign = clinic(&ws, CLINIC, "");
    ws.test()
        .args(["run", campaign.to_str().unwrap(), "--simulate"])
        .stdout_any()
        .stderr_any()
        .status(0);
    let html = report(&ws, &campaign, None);
    assert!(html.contains("<title>SIMULATED · clinic"), "{html}");
    let body = &html[html.find("<body>").unwrap()..];
    assert!(
        body.starts_with("<body><p class=\"banner\" id=\"simulated\">SIMULATED: "),
        "the banner comes first: {body}"
    );
}

#[test]
fn the_key_figures_counts_and_lists_add_up_to_the_calls_made() {
    let ws = Workspace::new();
    // Two answered, two no-answers (tried again the next day), a busy, a failure; one patient
    // on the do-not-call list, an invalid number and a duplicate.
    let list = format!(
        "{CLINIC}周杰,13800130006,12月4日,09:00,李明\n坏号,12345,12月4日,09:30,李明\n重复,13800130000,12月4日,10:00,李明\n"
    );
    ws.write("dnc.txt", "13800130006\n");
    let campaign = clinic(
        &ws,
        &list,
        "suppress: [dnc.txt]\n\
         redial: { max_attempts: 2, when: [no_answer], after: 1h }\n\
         outcomes:\n  reschedule: { user_says_any: [\"好的\"] }\n  opt_out: { user_says_any: [\"thanks\"] }\n",
    );
    let day1 = "2026-12-01T10:00:00+08:00";
    run_ending(
        &ws,
        &campaign,
        "completed",
        Some(day1),
        &["--max-calls", "2"],
    );
    run_ending(
        &ws,
        &campaign,
        "no_answer",
        Some(day1),
        &["--max-calls", "2"],
    );
    run_ending(&ws, &campaign, "busy", Some(day1), &["--max-calls", "1"]);
    run_ending(&ws, &campaign, "failed", Some(day1), &[]);

    // On the first day the no-answers are stepcall's to try again: only the busy is a person's.
    let html = report(&ws, &campaign, Some("2026-12-01T10:30:00+08:00"));
    let back: Vec<String> = rows(&html, "call-back")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(back, ["刘洋"]);
    assert!(
        html.contains(
            "2 more will be tried again by stepcall, the first at 2026-12-01 11:00 Asia/Shanghai."
        ),
        "{html}"
    );

    run_ending(
        &ws,
        &campaign,
        "no_answer",
        Some("2026-12-02T15:00:00+08:00"),
        &[],
    );
    let html = report(&ws, &campaign, Some("2026-12-02T16:00:00+08:00"));
    assert!(html.contains(
        "Report made 2026-12-02 16:00 Asia/Shanghai. Calls from 2026-12-01 to 2026-12-02."
    ));
    // 9 rows, 7 valid (the suppressed one too), 6 dialled; 8 calls: 6, then 2 redials.
    // The simulator bills an answered call of 42 s as one minute, ¥0.10; the rest cost nothing.
    for (label, value) in [
        ("contacts", "9"),
        ("dialled", "6"),
        ("attempts", "8"),
        ("answer rate", "33%"),
        ("average duration", "42 s"),
        ("cost", "¥0.20"),
        ("cost per answered call", "¥0.10"),
    ] {
        let figure = format!("<dt>{label}</dt><dd>{value}</dd>");
        assert!(html.contains(&figure), "{figure}");
    }
    assert!(html.contains("<p>9 contacts, 7 valid, 6 dialled.</p>"));
    let why = element(&html, "not-dialled", "ul");
    for part in [
        "<li>1 not valid",
        "<li>1 duplicate",
        "<li>1 suppressed: on the do-not-call list",
    ] {
        assert!(why.contains(part), "{part}: {why}");
    }
    // answered, no_answer, busy, failed, other, calls: printed, not only in hover titles.
    assert_eq!(
        rows(&html, "by-hour"),
        [
            ["10:00", "2", "2", "1", "1", "0", "6"],
            ["15:00", "0", "2", "0", "0", "0", "2"],
        ]
    );
    assert_eq!(
        rows(&html, "by-day"),
        [
            ["2026-12-01", "2", "2", "1", "1", "0", "6"],
            ["2026-12-02", "0", "2", "0", "0", "0", "2"],
        ]
    );
    assert!(
        html.contains("font-size=\"11\" text-anchor=\"middle\">6</text>"),
        "the chart prints each column's count"
    );
    // name, date, time, doctor, phone, last outcome, attempts, last call
    let back = rows(&html, "call-back");
    let back: Vec<[&str; 4]> = back
        .iter()
        .map(|r| [r[0].as_str(), r[5].as_str(), r[6].as_str(), r[7].as_str()])
        .collect();
    assert_eq!(
        back,
        [
            ["赵敏", "no_answer", "2", "2026-12-02 15:00"],
            ["陈静", "no_answer", "2", "2026-12-02 15:00"],
            ["刘洋", "busy", "1", "2026-12-01 10:00"],
        ]
    );
    let needs = rows(&html, "needs-a-person");
    let needs: Vec<[&str; 3]> = needs
        .iter()
        .map(|r| [r[0].as_str(), r[5].as_str(), r[6].as_str()])
        .collect();
    assert_eq!(
        needs,
        [
            ["张伟", "answered", "opt_out,reschedule"],
            ["王芳", "answered", "opt_out,reschedule"],
            ["孙丽", "failed", ""],
        ]
    );
    for tag in ["reschedule", "opt_out"] {
        let people: Vec<String> = rows(&html, &format!("tag-{tag}"))
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(people, ["张伟", "王芳"], "{tag}");
        assert!(html.contains(&format!("<h3>{tag} (2)</h3>")));
    }
    let tags = html.find("<h3>reschedule").unwrap() < html.find("<h3>opt_out").unwrap();
    assert!(tags, "reschedules first, then opt-outs");
}
