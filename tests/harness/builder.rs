//! `Test`: the one way a test runs stepcall. It holds what a command needs (a workspace with a
//! campaign and a contact list, a provider, stepcall's clock, the environment), runs the real
//! binary, and checks the exit code and both outputs. An output the test declared nothing
//! about must be empty, so a new warning or a stray print fails the test that did not expect
//! it.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::ops::Deref;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use super::{API, KEY, LIMITS, Sim, Workspace, bin, clean, text};

/// How long one command may go on before the test kills it and fails: a bound on hangs only,
/// far above what any command here needs however loaded the machine is.
pub const WATCHDOG: Duration = Duration::from_secs(300);

/// What a test expects of one output.
#[derive(Clone, Debug)]
enum Want {
    Empty,
    Exact(String),
    Contains(Vec<String>),
    Any,
}

impl Want {
    fn contains(self, part: &str) -> Want {
        match self {
            Want::Contains(mut parts) => {
                parts.push(part.to_string());
                Want::Contains(parts)
            }
            _ => Want::Contains(vec![part.to_string()]),
        }
    }

    fn problem(&self, name: &str, got: &str) -> Option<String> {
        match self {
            Want::Empty => (!got.is_empty()).then(|| format!("{name} was declared empty")),
            Want::Exact(want) => (got != want).then(|| format!("{name} is not {want:?}")),
            Want::Contains(parts) => parts
                .iter()
                .find(|p| !got.contains(p.as_str()))
                .map(|p| format!("{name} lacks {p:?}")),
            Want::Any => None,
        }
    }
}

#[derive(Clone, Debug)]
struct Checks {
    what: String,
    stdout: Want,
    stderr: Want,
    watchdog: Duration,
}

impl Checks {
    #[track_caller]
    fn check(&self, out: &Output, code: i32) {
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let problems: Vec<String> = [
            (out.status.code() != Some(code))
                .then(|| format!("exit {:?}, not {code}", out.status.code())),
            self.stdout.problem("stdout", &stdout),
            self.stderr.problem("stderr", &stderr),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(
            problems.is_empty(),
            "{}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            self.what,
            problems.join("; ")
        );
    }
}

/// A stepcall command to run: `Test::new()` in a fresh workspace, or `ws.test()` in one the
/// test keeps.
pub struct Test {
    ws: Workspace,
    sim: Option<Sim>,
    url: Option<String>,
    key: Option<String>,
    campaign: Option<[String; 3]>,
    contacts: Option<usize>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    ulimit: Option<String>,
    checks: Checks,
}

impl Test {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Test {
        Test::within(&Workspace::new())
    }

    pub fn within(ws: &Workspace) -> Test {
        Test {
            ws: ws.clone(),
            sim: None,
            url: None,
            key: None,
            campaign: None,
            contacts: None,
            args: Vec::new(),
            env: Vec::new(),
            ulimit: None,
            checks: Checks {
                what: String::new(),
                stdout: Want::Empty,
                stderr: Want::Empty,
                watchdog: WATCHDOG,
            },
        }
    }

    /// A simulator of the test's own (`Sim::start(extra)`), handed back in the `Ran`.
    pub fn sim(self, extra: &[&str]) -> Test {
        let sim = Sim::start(extra);
        let mut test = self.against(&sim);
        test.sim = Some(sim);
        test
    }

    /// Against `sim`: `--base-url` after the arguments, and the test key unless `key` says.
    pub fn against(self, sim: &Sim) -> Test {
        self.provider(&sim.url)
    }

    /// Against the provider at `url`, as `against` does.
    pub fn provider(mut self, url: &str) -> Test {
        self.url = Some(url.to_string());
        self.key.get_or_insert_with(|| KEY.to_string());
        self
    }

    /// `STEPONEAI_API_KEY`; unset unless a provider is given or this says.
    pub fn key(mut self, key: &str) -> Test {
        self.key = Some(key.to_string());
        self
    }

    /// Writes `campaign.yaml` (see `Workspace::campaign`) before the command runs.
    pub fn campaign(self, extra: &str) -> Test {
        self.campaign_with(API, LIMITS, extra)
    }

    pub fn campaign_with(mut self, api: &str, limits: &str, extra: &str) -> Test {
        self.campaign = Some([api.into(), limits.into(), extra.into()]);
        self
    }

    /// Writes `contacts.csv` (see `Workspace::contacts`) before the command runs.
    pub fn contacts(mut self, valid: usize) -> Test {
        self.contacts = Some(valid);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Test {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<S: AsRef<OsStr>>(self, args: impl IntoIterator<Item = S>) -> Test {
        args.into_iter().fold(self, Test::arg)
    }

    /// Stepcall's clock starts at `at` (RFC 3339), through `STEPCALL_NOW`.
    pub fn now(self, at: &str) -> Test {
        self.env("STEPCALL_NOW", at)
    }

    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Test {
        self.env.push((name.as_ref().into(), value.as_ref().into()));
        self
    }

    /// Runs under bash's `ulimit <limit>` (`-d 512000`, `-f 400`).
    pub fn ulimit(mut self, limit: &str) -> Test {
        self.ulimit = Some(limit.to_string());
        self
    }

    pub fn watchdog(mut self, watchdog: Duration) -> Test {
        self.checks.watchdog = watchdog;
        self
    }

    pub fn stdout(mut self, exact: &str) -> Test {
        self.checks.stdout = Want::Exact(exact.to_string());
        self
    }

    pub fn stdout_contains(mut self, part: &str) -> Test {
        self.checks.stdout = self.checks.stdout.contains(part);
        self
    }

    pub fn stdout_any(mut self) -> Test {
        self.checks.stdout = Want::Any;
        self
    }

    pub fn stderr(mut self, exact: &str) -> Test {
        self.checks.stderr = Want::Exact(exact.to_string());
        self
    }

    pub fn stderr_contains(mut self, part: &str) -> Test {
        self.checks.stderr = self.checks.stderr.contains(part);
        self
    }

    pub fn stderr_any(mut self) -> Test {
        self.checks.stderr = Want::Any;
        self
    }

    /// The command, its files written, run in the workspace with it as `HOME`; its
    /// stdio left to the caller.
    pub fn command(&self) -> Command {
        if let Some(valid) = self.contacts {
            self.ws.contacts(valid);
        }
        if let Some([api, limits, extra]) = &self.campaign {
            self.ws.campaign_with(api, limits, extra);
        }
        let mut cmd = match &self.ulimit {
            None => bin(),
            Some(limit) => {
                let mut shell = clean(Command::new("bash"));
                shell
                    .arg("-c")
                    .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""));
                shell.arg(env!("CARGO_BIN_EXE_stepcall"));
                shell
            }
        };
        cmd.args(&self.args);
        if let Some(url) = &self.url {
            cmd.arg("--base-url").arg(url);
        }
        if let Some(key) = &self.key {
            cmd.env("STEPONEAI_API_KEY", key);
        }
        cmd.env("HOME", self.ws.dir.path())
            .current_dir(self.ws.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Started, its outputs collected; `Running::status` waits and checks.
    pub fn spawn(self) -> Running {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            stdout.read_to_end(&mut bytes).unwrap();
            bytes
        });
        let (tx, lines) = channel();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut line = Vec::new();
            while stderr.read_until(b'\n', &mut line).unwrap() > 0 {
                let _ = tx.send(std::mem::take(&mut line));
            }
        });
        let mut checks = self.checks;
        checks.what = format!("stepcall {:?}", self.args);
        Running {
            child,
            stdout,
            lines,
            stderr: Vec::new(),
            checks,
            ws: self.ws,
            sim: self.sim,
        }
    }

    /// Runs to its end: exits `code`, and its outputs are as declared.
    #[track_caller]
    pub fn status(self, code: i32) -> Ran {
        self.spawn().status(code)
    }
}

/// A command started by `Test::spawn`.
pub struct Running {
    pub child: Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    lines: Receiver<Vec<u8>>,
    stderr: Vec<u8>,
    checks: Checks,
    ws: Workspace,
    sim: Option<Sim>,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`libc::SIGINT`, …).
    pub fn signal(&self, signal: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Waits until stderr has said `part`, within the watchdog.
    #[track_caller]
    pub fn wait_for_stderr(&mut self, part: &str) {
        let deadline = Instant::now() + self.checks.watchdog;
        while !text(&self.stderr).contains(part) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stderr.extend(line),
                Err(e) => panic!("{} never said {part:?} ({e:?})", self.checks.what),
            }
        }
    }

    /// Waits for the end (killing it after the watchdog): exits `code`, outputs as declared.
    #[track_caller]
    pub fn status(mut self, code: i32) -> Ran {
        let (pid, what, watchdog) = (self.child.id(), &self.checks.what, self.checks.watchdog);
        let (tx, done) = channel();
        let mut child = self.child;
        std::thread::spawn(move || tx.send(child.wait()));
        let status = match done.recv_timeout(watchdog) {
            Ok(status) => status.unwrap(),
            Err(_) => {
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                panic!("{what} was still going after {watchdog:?}");
            }
        };
        self.stderr.extend(self.lines.iter().flatten());
        let output = Output {
            status,
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr,
        };
        self.checks.check(&output, code);
        Ran {
            output,
            ws: self.ws,
            sim: self.sim,
        }
    }
}

/// A command that ran to its end, with the workspace (and simulator) it ran in.
pub struct Ran {
    pub output: Output,
    pub ws: Workspace,
    sim: Option<Sim>,
}

impl Ran {
    pub fn stdout(&self) -> String {
        text(&self.output.stdout)
    }

    pub fn stderr(&self) -> String {
        text(&self.output.stderr)
    }

    /// Stdout as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", self.stdout()))
    }

    /// The simulator `Test::sim` started.
    pub fn sim(&self) -> &Sim {
        self.sim.as_ref().expect("the test started a simulator")
    }
}

impl Deref for Ran {
    type Target = Output;

    fn deref(&self) -> &Output {
        &self.output
    }
}
