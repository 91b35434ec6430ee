//! The campaign engine's clock: the system clock, or (in tests) the system clock shifted by an
//! amount the test sets, so a test can put the engine at "09:00 partner time on the customer's
//! birthday" without sleeping. A shifted clock still runs at the system clock's rate, so
//! waits, deliveries and retries behave as in production; moving it wakes every task that
//! sleeps on it, which then looks again at what is due.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

/// The clock the campaign engine and delivery read. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system clock; `None` for the system clock itself.
    shift: Option<watch::Receiver<i64>>,
}

/// Sets a shifted [`Clock`] (tests).
#[derive(Debug)]
pub struct ClockHandle {
    shift: watch::Sender<i64>,
}

fn system_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock the returned handle moves; it starts at the system time.
    pub fn shifted() -> (Clock, ClockHandle) {
        let (tx, rx) = watch::channel(0);
        (Clock { shift: Some(rx) }, ClockHandle { shift: tx })
    }

    /// Now, Unix ms.
    pub fn now_ms(&self) -> i64 {
        system_ms() + self.shift.as_ref().map_or(0, |s| *s.borrow())
    }

    /// Now, as a timestamp.
    pub fn now(&self) -> OffsetDateTime {
        crate::store::rows::ms_to_datetime(self.now_ms())
    }

    /// Returns at `due` (never, for `None`), or earlier when the clock is moved: the caller
    /// then looks again at what is due.
    pub async fn sleep_until(&self, due: Option<i64>) {
        let sleep = async {
            match due {
                Some(due) => {
                    let left = due.saturating_sub(self.now_ms()).max(0) as u64;
                    tokio::time::sleep(Duration::from_millis(left)).await;
                }
                None => std::future::pending().await,
            }
        };
        match &self.shift {
            None => sleep.await,
            Some(shift) => {
                let mut moved = shift.clone();
                moved.mark_unchanged();
                tokio::select! {
                    () = sleep => {},
                    // An error means the handle is gone: the clock will not move again.
                    Ok(()) = moved.changed() => {},
                }
            }
        }
    }
}

impl ClockHandle {
    /// Moves the clock so that it reads `now_ms` now (and runs on from there).
    pub fn set_ms(&self, now_ms: i64) {
        self.shift.send_replace(now_ms - system_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shifted_clock_reads_the_time_set_and_moving_it_wakes_a_sleeper() {
        let (clock, handle) = Clock::shifted();
        let target = 1_800_000_000_000;
        handle.set_ms(target);
        let now = clock.now_ms();
        assert!((target..target + 5_000).contains(&now), "{now}");
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(Some(target + 86_400_000)).await })
        };
        handle.set_ms(target + 86_400_000);
        tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .expect("moving the clock wakes the sleeper")
            .unwrap();
    }
}
