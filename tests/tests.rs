//! The one integration-test binary: every test drives the real `stepcall` executable against
//! the simulator over HTTP on 127.0.0.1, the way a user or cron would.

mod harness;

mod accidents;
mod bounds;
mod changes;
mod cli;
mod client;
mod crash;
mod end_to_end;
mod export;
mod faults;
mod hostile;
mod lists;
mod phones;
mod provider;
mod references;
mod report;
mod schedule;
mod secrets;
mod signals;
mod storage;
mod validate;
mod webhook;
