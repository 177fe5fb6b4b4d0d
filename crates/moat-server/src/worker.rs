//! The bounded worker pool: N workers in this process claim jobs from the store's queue (so any
//! number of `--role worker` replicas on one PostgreSQL share it), heartbeat their lease while a job
//! runs, and give a failed job back with exponential backoff (dead after its attempts; a dead scan
//! leaves the verdict pending, never passed).
//!
//! Lanes are tried in priority order on every claim: `push` first, so a push verdict never waits behind
//! background work; the other lanes (`manual`, `reeval`, ...) together never take more than N-1
//! workers when N > 1, so one worker is always free for a push.
//!
//! Lanes other than the scan lanes are registered by their owners with [`Pool::with_lane`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::AppState;
use crate::pipeline::scan::{JobError, Pipeline};
use crate::store::queue::{Job, LANE_MANUAL, LANE_PUSH};
use crate::store::{new_id, now_ms};

static WAKE: Notify = Notify::const_new();

/// Wakes idle workers of this process (a job was just enqueued); other processes poll.
pub fn wake() {
    WAKE.notify_waiters();
}

/// A job handler's future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;

/// Runs one claimed job: `(state, job, worker id)`. On success it has completed the job in the
/// transaction that stored its results (`store::queue::complete`); on error the pool retries it.
pub type Handler = Arc<dyn Fn(AppState, Job, String) -> HandlerFuture + Send + Sync>;

/// The retry delay after `attempts` failed attempts.
pub type Backoff = Arc<dyn Fn(i64) -> Duration + Send + Sync>;

/// A pool of workers over the lanes it was given.
pub struct Pool {
    state: AppState,
    workers: usize,
    lease: Duration,
    poll: Duration,
    lanes: Vec<(String, Handler)>,
    backoff: Backoff,
}

impl Pool {
    /// A pool running push and manual scans with the pipeline.
    pub fn new(state: AppState, pipeline: Arc<Pipeline>, workers: usize) -> Pool {
        let s = pipeline.config.scan.clone();
        let p = pipeline.clone();
        let scan: Handler = Arc::new(move |st: AppState, job: Job, worker: String| {
            let p = p.clone();
            Box::pin(async move { crate::pipeline::scan::run(&st, &p, &job, &worker).await })
        });
        let retry = s.clone();
        Pool {
            state,
            workers: workers.max(1),
            lease: Duration::from_secs(s.lease_seconds.max(5)),
            poll: Duration::from_millis(500),
            lanes: vec![
                (LANE_PUSH.to_string(), scan.clone()),
                (LANE_MANUAL.to_string(), scan),
            ],
            backoff: Arc::new(move |n| retry.backoff(n)),
        }
    }

    /// Adds a lane after the ones already given (lower priority), e.g. re-evaluation.
    pub fn with_lane(mut self, lane: &str, handler: Handler) -> Pool {
        self.lanes.retain(|(l, _)| l != lane);
        self.lanes.push((lane.to_string(), handler));
        self
    }

    /// How often idle workers look for jobs queued by other processes.
    pub fn poll_every(mut self, d: Duration) -> Pool {
        self.poll = d.max(Duration::from_millis(10));
        self
    }

    /// Starts the workers.
    pub fn spawn(self) -> Vec<JoinHandle<()>> {
        let shared = Arc::new(Shared {
            state: self.state,
            lease: self.lease,
            poll: self.poll,
            lanes: self.lanes,
            backoff: self.backoff,
            background: AtomicUsize::new(0),
            max_background: if self.workers > 1 {
                self.workers - 1
            } else {
                1
            },
        });
        (0..self.workers)
            .map(|i| {
                let s = shared.clone();
                let id = format!("worker-{}-{i}-{}", std::process::id(), &new_id()[16..]);
                tokio::spawn(async move { s.run(id).await })
            })
            .collect()
    }
}

struct Shared {
    state: AppState,
    lease: Duration,
    poll: Duration,
    lanes: Vec<(String, Handler)>,
    backoff: Backoff,
    background: AtomicUsize,
    max_background: usize,
}

impl Shared {
    async fn run(self: Arc<Self>, worker: String) {
        let lease_ms = self.lease.as_millis() as i64;
        loop {
            let mut ran = false;
            for (lane, handler) in &self.lanes {
                let background = lane != LANE_PUSH;
                if background {
                    // Reserve: claim a background job only while the cap allows one more.
                    let n = self.background.fetch_add(1, Ordering::SeqCst);
                    if n >= self.max_background {
                        self.background.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                }
                let claimed = self.state.store.claim(lane, &worker, lease_ms).await;
                let job = match claimed {
                    Ok(Some(job)) => job,
                    Ok(None) => {
                        if background {
                            self.background.fetch_sub(1, Ordering::SeqCst);
                        }
                        continue;
                    }
                    Err(e) => {
                        if background {
                            self.background.fetch_sub(1, Ordering::SeqCst);
                        }
                        self.state.metrics.store_error();
                        eprintln!("moat server: {worker}: claiming from lane {lane}: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                self.execute(&worker, handler.clone(), job).await;
                if background {
                    self.background.fetch_sub(1, Ordering::SeqCst);
                }
                ran = true;
                // Start again from the highest-priority lane.
                break;
            }
            if !ran {
                let notified = WAKE.notified();
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(self.poll) => {}
                }
            }
        }
    }

    async fn execute(&self, worker: &str, handler: Handler, job: Job) {
        let lease_ms = self.lease.as_millis() as i64;
        let lost = Arc::new(AtomicBool::new(false));
        let hb = {
            let store = self.state.store.clone();
            let (id, w, lost) = (job.id.clone(), worker.to_string(), lost.clone());
            let every = self.lease / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.heartbeat(&id, &w, lease_ms).await {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        // A store hiccup: the next beat tries again before the lease runs out.
                        Err(_) => {}
                    }
                }
            })
        };
        let task = tokio::spawn(handler(self.state.clone(), job.clone(), worker.to_string()));
        let res = match task.await {
            Ok(r) => r,
            Err(e) => Err(JobError::new(format!("job {} panicked: {e}", job.id))),
        };
        hb.abort();
        if let Err(e) = res {
            if lost.load(Ordering::SeqCst) {
                // Someone else owns the job now; its outcome decides.
                return;
            }
            let at = now_ms() + (self.backoff)(job.attempts).as_millis() as i64;
            match self
                .state
                .store
                .retry(&job.id, worker, at, &e.message)
                .await
            {
                Ok(Some(state)) => eprintln!(
                    "moat server: job {} ({}) attempt {}/{} failed, {state}: {}",
                    job.id, job.concurrency_key, job.attempts, job.max_attempts, e.message
                ),
                Ok(None) => {}
                Err(se) => {
                    self.state.metrics.store_error();
                    eprintln!(
                        "moat server: job {}: could not record the failure ({se}); its lease will expire and it runs again",
                        job.id
                    );
                }
            }
        }
    }
}
