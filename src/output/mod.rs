//! What people and other systems read: the export (CSV and JSON lines in `export`, the Excel
//! workbook in `xlsx`), the HTML report, `status`, and the webhook events sent to a CRM.
//!
//! All of it reads committed state, never in-flight memory, so it is the same whether a run is
//! going on, was killed, or finished.
//!
//! May import: `config`, `state`, `provider::client`'s HTTP helpers, and `engine::stop` (a
//! delivery pass ends when the run stops).

pub(crate) mod export;
pub(crate) mod report;
pub(crate) mod status;
pub(crate) mod webhook;
pub(crate) mod xlsx;
