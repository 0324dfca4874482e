//! `Stop`: the one flag that ends a run early, and the reason it was raised.
//!
//! A fatal provider answer, a database write that failed, or a signal all mean the same to the
//! dialer: start no new call. The first reason raised wins and becomes the run's error (and so
//! its exit code); later ones are consequences.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::errors::Error;

/// The least a stopped run waits for requests already on the wire (more with a longer
/// request timeout, so an answer on its way is not cut off).
pub const GRACE: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Stop {
    raised: Arc<watch::Sender<bool>>,
    reason: Arc<Mutex<Option<Error>>>,
}

impl Default for Stop {
    fn default() -> Stop {
        Stop {
            raised: Arc::new(watch::channel(false).0),
            reason: Arc::new(Mutex::new(None)),
        }
    }
}

impl Stop {
    pub fn is_raised(&self) -> bool {
        *self.raised.borrow()
    }

    /// Raises the flag with `reason`, unless an earlier reason was given.
    pub fn raise(&self, reason: Error) {
        let mut slot = self.reason.lock().expect("stop reason");
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.raised.send_replace(true);
    }

    /// Resolves once the flag is raised.
    pub async fn raised(&self) {
        let mut rx = self.raised.subscribe();
        let _ = rx.wait_for(|raised| *raised).await;
    }

    pub fn take_reason(&self) -> Option<Error> {
        self.reason.lock().expect("stop reason").take()
    }
}
