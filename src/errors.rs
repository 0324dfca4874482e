//! Every error a user can meet, as one `thiserror` enum rendered by `miette`.
//!
//! Each variant reads as one sentence that says what happened and where (file, line, column or
//! row), and its `help` says what to do about it. The exit code of each variant is decided here
//! too, so the mapping from failure to exit code is one table instead of scattered `exit()`s.
//! The API key never appears in any variant: errors carry the provider's status and message, not
//! the request.

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};

use crate::exit;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    #[error("cannot read {}: {cause}", path.display())]
    #[diagnostic(help("check the path; paths inside a campaign file are relative to that file"))]
    ReadFile {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("{}:{line}:{column}: {message}", path.display())]
    #[diagnostic(help("{help}"))]
    CampaignSyntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        help: String,
        #[source_code]
        source_code: NamedSource<String>,
        #[label("here")]
        span: SourceSpan,
    },

    #[error("{}: {message}", path.display())]
    #[diagnostic(help("{help}"))]
    CampaignInvalid {
        path: PathBuf,
        message: String,
        help: String,
    },

    #[error("{}, line {line}: {message}", path.display())]
    #[diagnostic(help("{help}"))]
    ContactsFormat {
        path: PathBuf,
        line: u64,
        message: String,
        help: String,
    },

    #[error("{}: the phone column `{column}` is not in the header (columns: {available})", path.display())]
    #[diagnostic(help("{help}"))]
    MissingPhoneColumn {
        path: PathBuf,
        column: String,
        available: String,
        help: String,
    },

    #[error("{}: the user_requirement template does not parse: {message}", path.display())]
    #[diagnostic(help("fix the template; variables are written {{{{ column_name }}}}"))]
    TemplateSyntax { path: PathBuf, message: String },

    #[error("{}: the user_requirement template uses {variables}, which {verb} not a column of {}", path.display(), contacts.display())]
    #[diagnostic(help(
        "add the column to the contact list or fix the spelling; the columns are: {available}"
    ))]
    TemplateUnknownVariables {
        path: PathBuf,
        contacts: PathBuf,
        variables: String,
        verb: &'static str,
        available: String,
    },

    #[error("{}: the column `{column}` has the name of an export column and would be overwritten", contacts.display())]
    #[diagnostic(help(
        "rename that column in the contact list; names starting with call_ are reserved for results"
    ))]
    ColumnClash { contacts: PathBuf, column: String },

    #[error("{}: the campaign changed after calls were made: {changes}", path.display())]
    #[diagnostic(help(
        "if the change is intended, run again with --accept-changes: contacts not dialled yet get the new settings, calls already made keep theirs"
    ))]
    CampaignChanged { path: PathBuf, changes: String },

    #[error("{}: the user_requirement template cannot be used: {message}", path.display())]
    #[diagnostic(help("{help}"))]
    TemplateUnusable {
        path: PathBuf,
        message: String,
        help: &'static str,
    },

    #[error("{} is {kind}, not a file", path.display())]
    #[diagnostic(help(
        "point the campaign at a regular file; a contact list is read whole, so devices, pipes and folders are refused"
    ))]
    NotAFile { path: PathBuf, kind: &'static str },

    #[error("the state database {} was {found} while this run was using it", path.display())]
    #[diagnostic(help(
        "no further call is started; the calls this run made are recorded only in the file that was there. Never delete or replace the database while a run is going; to start a campaign over, wait until no run is going"
    ))]
    StateMoved { path: PathBuf, found: &'static str },

    #[error("the state database {} has lost commits: it holds dial attempts up to #{found}, but a run already committed #{recorded} (noted in {})", path.display(), lock.display())]
    #[diagnostic(help(
        "its -wal file was probably deleted after a crash, and with it the record of calls that may have rung people: nothing is dialled. Put the -wal file back if you still have it. If it is gone for good, check the provider's call log for those calls, then delete {} to accept the loss", lock.display()
    ))]
    StateBehind {
        path: PathBuf,
        lock: PathBuf,
        recorded: i64,
        found: i64,
    },

    #[error("the state database {} belongs to campaign `{found}`, not `{expected}`", path.display())]
    #[diagnostic(help("give this campaign its own database with `state:` in the campaign file"))]
    StateOfOtherCampaign {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error("the state database {} holds a {found} run, and this is a {wanted} run", path.display())]
    #[diagnostic(help(
        "simulated and real calls never share a database: set a different `state:` for one of them, or delete the simulated database"
    ))]
    StateModeMismatch {
        path: PathBuf,
        found: &'static str,
        wanted: &'static str,
    },

    #[error("the state database {} was written by a newer stepcall (schema {found}, this one knows {known})", path.display())]
    #[diagnostic(help("upgrade stepcall before running this campaign"))]
    StateTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error("there is no state database at {} yet", path.display())]
    #[diagnostic(help("run the campaign first: {} run <campaign>", crate::cli::program()))]
    NoState { path: PathBuf },

    #[error("cannot use the state database {}: {cause}", path.display())]
    #[diagnostic(help(
        "check that the disk has space and the file is writable; no further call is started until it is"
    ))]
    State {
        path: PathBuf,
        cause: rusqlite::Error,
    },

    #[error("another stepcall run of this campaign is in progress ({holder})")]
    #[diagnostic(help("wait for it to finish, or stop it; its lock is {}", lock.display()))]
    Locked { lock: PathBuf, holder: String },

    #[error("no Stepone API key found")]
    #[diagnostic(help(
        "set STEPONEAI_API_KEY, or put {{\"steponeai_api_key\": \"...\"}} in ~/.clawd/secrets.json (keys are made at https://open-skill.steponeai.com/keys){}",
        if *simulate { "; to try stepcall without a key, add --simulate" } else { "" }
    ))]
    NoApiKey {
        /// The command takes `--simulate`, so the help may offer it.
        simulate: bool,
    },

    #[error("the API key contains characters that cannot be sent in an HTTP header")]
    #[diagnostic(help(
        "copy the key again from https://open-skill.steponeai.com/keys, without spaces or line breaks inside it"
    ))]
    BadApiKey,

    #[error("the webhook secret cannot be used: the environment variable {env} {problem}")]
    #[diagnostic(help(
        "set {env} to the secret the CRM checks signatures with (a whsec_ secret is base64, any other is used as it is); nothing was dialled"
    ))]
    WebhookSecret { env: String, problem: String },

    #[error("cannot read the secrets file {}: {message}", path.display())]
    #[diagnostic(help(
        "it must be JSON like {{\"steponeai_api_key\": \"...\"}}, or set STEPONEAI_API_KEY instead"
    ))]
    SecretsFile { path: PathBuf, message: String },

    #[error("the provider rejected the API key (HTTP {status}): {message}")]
    #[diagnostic(help(
        "check STEPONEAI_API_KEY or ~/.clawd/secrets.json; then run the same command again: nothing was dialled with the bad key"
    ))]
    AuthRejected { status: u16, message: String },

    #[error("the provider rejected this client's protocol version (HTTP 426): {message}")]
    #[diagnostic(help("upgrade stepcall; then run the same command again to resume"))]
    VersionRejected { message: String },

    #[error("the provider says the account has no credit left: {message}")]
    #[diagnostic(help(
        "top up the account at https://open-skill.steponeai.com; then run the same command again to resume"
    ))]
    NoBalance { message: String },

    #[error("{url} answered as {answered}, but this run began as a {began} run")]
    #[diagnostic(help(
        "a run is a rehearsal or live from its start, by the provider's first answer: start `stepcall sim` before the run (or point --base-url at the real API), give the run a new `state:` database, and run again; the calls made so far are recorded"
    ))]
    ProviderModeChanged {
        url: String,
        began: &'static str,
        answered: &'static str,
    },

    #[error("the API is not where the base URL {url} points: {message}")]
    #[diagnostic(help(
        "check --base-url, STEPONEAI_BASE_URL or api.base_url (the real API is https://open-skill-api.steponeai.com); then run the same command again"
    ))]
    Endpoint { url: String, message: String },

    #[error("the provider kept refusing or could not be reached: {message}")]
    #[diagnostic(help(
        "nothing was lost: contacts not dialled stay pending; run the same command again later"
    ))]
    ProviderUnavailable { message: String },

    #[error("the call may or may not have been placed: {message}")]
    #[diagnostic(help("do not call again blindly: the person may already have been rung"))]
    CallUncertain { message: String },

    #[error("{message}")]
    #[diagnostic(help(
        "this is a bug in stepcall; everything committed is safe, run the same command again to resume"
    ))]
    Internal { message: String },

    #[error("the provider did not give a result for call {call_id} after {tries} tries")]
    #[diagnostic(help(
        "records can take minutes to appear: try again later with `{} callinfo {call_id}`",
        crate::cli::program()
    ))]
    ResultPending { call_id: String, tries: u32 },

    #[error("the provider knows no call with the id {call_id} (HTTP 404: {message})")]
    #[diagnostic(help(
        "check the id: it is the `call_id` printed by `call` or shown in the export's call_id column"
    ))]
    CallNotFound { call_id: String, message: String },

    #[error("the provider did not accept the call: {message}")]
    #[diagnostic(help("{help}"))]
    CallNotPlaced { message: String, help: String },

    #[error("{message}")]
    #[diagnostic(help("{help}"))]
    Usage { message: String, help: String },

    #[error("an Excel sheet holds at most {limit}, and this export has more")]
    #[diagnostic(help("export as CSV (-o results.csv), or in parts with --only or --since"))]
    XlsxTooBig { limit: &'static str },

    #[error("cannot write {}: {cause}", path.display())]
    #[diagnostic(help("check that the folder exists and is writable"))]
    WriteFile {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("the simulator could not start on {addr}: {cause}")]
    #[diagnostic(help("choose another address with --addr, e.g. 127.0.0.1:0 for any free port"))]
    SimulatorBind { addr: String, cause: std::io::Error },

    #[error("stopped by {signal}")]
    #[diagnostic(help("everything committed is safe; run the same command again to resume"))]
    Interrupted { signal: &'static str, code: u8 },
}

impl Error {
    /// The process exit code for this error (see `exit`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::CampaignSyntax { .. }
            | Error::CampaignInvalid { .. }
            | Error::ContactsFormat { .. }
            | Error::MissingPhoneColumn { .. }
            | Error::TemplateSyntax { .. }
            | Error::TemplateUnknownVariables { .. }
            | Error::TemplateUnusable { .. }
            | Error::NotAFile { .. }
            | Error::ColumnClash { .. }
            | Error::CampaignChanged { .. }
            | Error::StateOfOtherCampaign { .. }
            | Error::StateModeMismatch { .. }
            | Error::NoState { .. }
            | Error::SecretsFile { .. }
            | Error::CallNotPlaced { .. }
            | Error::Usage { .. }
            | Error::XlsxTooBig { .. }
            | Error::ReadFile { .. } => exit::INVALID_INPUT,
            Error::State { .. }
            | Error::StateTooNew { .. }
            | Error::StateMoved { .. }
            | Error::StateBehind { .. } => exit::STATE_ERROR,
            Error::Locked { .. } => exit::LOCKED,
            Error::NoApiKey { .. }
            | Error::BadApiKey
            | Error::Endpoint { .. }
            | Error::ProviderModeChanged { .. }
            | Error::WebhookSecret { .. } => exit::CONFIG,
            Error::ProviderUnavailable { .. } => exit::PROVIDER_UNAVAILABLE,
            Error::CallUncertain { .. } | Error::Internal { .. } => exit::FAILURE,
            Error::AuthRejected { .. } => exit::AUTH_REJECTED,
            Error::VersionRejected { .. } => exit::VERSION_REJECTED,
            Error::NoBalance { .. } => exit::NO_BALANCE,
            Error::ResultPending { .. } => exit::RESULT_PENDING,
            Error::CallNotFound { .. } => exit::INVALID_INPUT,
            Error::WriteFile { .. } | Error::SimulatorBind { .. } => exit::FAILURE,
            Error::Interrupted { code, .. } => *code,
        }
    }

    /// The same error once more, for each of several callers it concerns (a failed group
    /// commit answers every job of the group).
    pub fn again(&self) -> Error {
        match self {
            Error::State { path, cause } => Error::State {
                path: path.clone(),
                cause: match cause {
                    rusqlite::Error::SqliteFailure(code, message) => {
                        rusqlite::Error::SqliteFailure(*code, message.clone())
                    }
                    other => rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                        Some(other.to_string()),
                    ),
                },
            },
            other => Error::Internal {
                message: other.to_string(),
            },
        }
    }

    pub fn state(path: &std::path::Path) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |cause| Error::State {
            path: path.to_path_buf(),
            cause,
        }
    }
}
