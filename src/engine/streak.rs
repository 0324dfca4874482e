//! The streak of bad answers that stops a run: the same bad answer again and again is the
//! provider's problem, not the contacts', so a run stops before it uses up the list on it.

use crate::errors::Error;
use crate::provider::answer::Dial;

/// The same bad answer again and again is the provider's problem, not the contacts': after
/// `MAX_UNCERTAIN_STREAK` uncertain answers with no call id among them, `MAX_REJECTED_STREAK`
/// identical rejections, or `MAX_THROTTLED_STREAK` numbers held back in a row, the run stops so
/// the rest of the list stays pending instead of being used up.
#[derive(Default)]
pub struct Streak {
    pub uncertain: u32,
    rejected: u32,
    last_rejection: String,
    throttled: u32,
    /// Calls sent whose answer is not recorded yet: each may still turn uncertain.
    pub in_flight: u32,
}

pub const MAX_UNCERTAIN_STREAK: u32 = 10;
const MAX_REJECTED_STREAK: u32 = 5;
/// Numbers held back in a row (each "called too often") before it is taken for the account.
const MAX_THROTTLED_STREAK: u32 = 5;

impl Streak {
    /// Counts repeated bad answers; the error to stop the run with, when there are too many.
    pub fn note(&mut self, dial: &Dial) -> Option<Error> {
        let streak = self;
        match dial {
            Dial::Accepted { .. } => {
                let in_flight = streak.in_flight;
                *streak = Streak {
                    in_flight,
                    ..Streak::default()
                };
            }
            Dial::Uncertain { reason, .. } => {
                streak.uncertain += 1;
                if streak.uncertain >= MAX_UNCERTAIN_STREAK {
                    return Some(Error::ProviderUnavailable {
                        message: format!(
                            "{} calls in a row may or may not have been placed (the last: {reason}); stopping so the rest of the list stays pending",
                            streak.uncertain
                        ),
                    });
                }
            }
            // A refusal proves the provider answers, not that calls go through: only a call
            // id ends a run of uncertain answers.
            Dial::Rejected { reason, .. } => {
                if *reason == streak.last_rejection {
                    streak.rejected += 1;
                } else {
                    streak.rejected = 1;
                    streak.last_rejection = reason.clone();
                }
                if streak.rejected >= MAX_REJECTED_STREAK {
                    return Some(Error::ProviderUnavailable {
                        message: format!(
                            "{} calls in a row were rejected with the same answer ({reason}); stopping so the rest of the list is not used up",
                            streak.rejected
                        ),
                    });
                }
            }
            Dial::Throttled { .. } => {
                streak.throttled += 1;
                if streak.throttled >= MAX_THROTTLED_STREAK {
                    return Some(Error::ProviderUnavailable {
                        message: format!(
                            "{} numbers in a row were refused as called too often: that looks like the account's limit, not one number's; stopping so the rest of the list stays pending",
                            streak.throttled
                        ),
                    });
                }
            }
            Dial::NotSent { .. } | Dial::Fatal { .. } => {}
        }
        None
    }
}
