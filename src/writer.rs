//! `Writer`: the one thread that owns the state database during a run.
//!
//! Async tasks must never block on SQLite (an fsync per intent takes milliseconds), and SQLite
//! wants one writer anyway. So the `Store` moves onto a dedicated thread, and tasks send it
//! closures through a channel and await the answer. Writes happen in the order they were sent,
//! and each closure runs to completion before the next, so a multi-statement change is never
//! interleaved with another task's.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::errors::{Error, Result};
use crate::store::Store;

type Job = Box<dyn FnOnce(&mut Store) + Send>;

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
                for job in inbox {
                    job(&mut store);
                }
                store
            })
            .expect("spawning the database thread");
        (Writer { jobs }, handle)
    }

    /// Runs `f` on the database thread and waits for its result.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        let gone = || Error::Internal {
            message: "the database thread stopped unexpectedly".into(),
        };
        self.jobs.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}
