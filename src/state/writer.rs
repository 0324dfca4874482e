//! `Writer`: the one thread that owns the state database during a run.
//!
//! Async tasks must never block on SQLite (an fsync per intent takes milliseconds), and SQLite
//! wants one writer anyway. So the `Store` moves onto a dedicated thread, and tasks send it
//! closures through a channel and await the answer. Writes happen in the order they were sent,
//! and each closure runs to completion before the next, so a multi-statement change is never
//! interleaved with another task's.
//!
//! Group commit: the jobs that queued up while the last commit was on its way to the disk run
//! together in one transaction, and share one fsync. Each job keeps its own savepoint, so a job
//! that fails undoes only itself. No job hears its answer before the commit that holds its writes
//! is durable: an intent to dial is on disk before its request can be sent, exactly as with one
//! commit per job, and if the commit fails every job of the group is told so.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::errors::{Error, Result};
use crate::state::Store;

/// A job's answer, held back until its group is committed; it gets the commit's error, if any.
type Reply = Box<dyn FnOnce(Option<&Error>) + Send>;
/// A job runs against the store, or is told why it cannot (the group could not start).
type Job = Box<dyn FnOnce(std::result::Result<&mut Store, &Error>) -> Reply + Send>;

/// The most jobs one transaction takes: enough to share an fsync among a burst of calls,
/// few enough that no answer waits long behind the others.
const MAX_GROUP: usize = 256;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Moves `store` to its own thread; joining the handle gives it back after the last
    /// `Writer` clone is dropped.
    pub fn spawn(mut store: Store) -> (Writer, JoinHandle<Store>) {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("stepcall-db".into())
            .spawn(move || {
                while let Ok(first) = inbox.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match inbox.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    run_group(&mut store, group);
                }
                store
            })
            .expect("spawning the database thread");
        (Writer { jobs }, handle)
    }

    /// Runs `f` on the database thread and waits until its writes are committed.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |store| {
            let result = match store {
                Ok(store) => f(store),
                Err(e) => Err(e.again()),
            };
            Box::new(move |failed: Option<&Error>| {
                let _ = reply.send(match failed {
                    None => result,
                    Some(e) => Err(e.again()),
                });
            })
        });
        let gone = || Error::Internal {
            message: "the database thread stopped unexpectedly".into(),
        };
        self.jobs.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Runs `group` in one transaction, then answers every job: done if the commit is durable,
/// the error otherwise.
fn run_group(store: &mut Store, group: Vec<Job>) {
    let mut failed = store.begin_group().err();
    let mut replies = Vec::with_capacity(group.len());
    for job in group {
        match &failed {
            Some(e) => replies.push(job(Err(e))),
            None => {
                replies.push(job(Ok(&mut *store)));
                if !store.in_group() {
                    // SQLite rolled the whole transaction back (disk full, I/O error): what
                    // the jobs before this one wrote is gone, so none of them is done.
                    failed = Some(store.group_lost());
                }
            }
        }
    }
    if failed.is_none() {
        failed = store.commit_group().err();
    }
    for reply in replies {
        reply(failed.as_ref());
    }
}
